//! SIP transports over UDP, TCP and TLS that feed bytes to the sans-IO SIP layer.
