//! Sans-IO SIP: message parsing and serialisation, transactions and timers, dialogs, digest authentication.
