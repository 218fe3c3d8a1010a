//! SDP parsing, serialisation and RFC 3264 offer/answer for audio.
