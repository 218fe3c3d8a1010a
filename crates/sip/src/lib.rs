//! Sans-IO SIP for Palaver: messages, transactions, dialogs, digest auth.
//!
//! No sockets, no clock, no threads: the runtime (`palaver-sip-rt`) reads
//! datagrams and stream bytes and feeds them in with the current time; what
//! comes out is bytes to send, events, and the next deadline.
//!
//! The types to meet first:
//! - [`Request`], [`Response`] and [`parse_message`]: a strict, fast parser
//!   whose errors say what is wrong (they become the `400` reason phrase);
//! - [`TransactionLayer`]: every client and server transaction with the
//!   RFC 3261 timers, driven by `handle_*` / `poll_*` calls;
//! - [`Dialog`]: one leg of a call, and the requests sent inside it;
//! - [`auth`]: digest challenges and verification (MD5, SHA-256, `qop=auth`).
//!
//! ```
//! use palaver_sip::{parse_message, Message};
//! let raw = b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
//! From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
//! assert!(matches!(parse_message(raw, true), Ok(Message::Request(_))));
//! ```
//!
//! Why our own stack rather than `rsipstack`: `docs/decisions/0001-sip-stack.md`.

pub mod auth;
pub mod dialog;
pub mod dtmf_info;
pub mod error;
pub mod header;
pub mod message;
pub mod method;
pub mod parse;
pub mod status;
pub mod text;
pub mod transaction;
pub mod transport;
pub mod uri;

pub use dialog::{Dialog, DialogId, new_call_id, new_tag};
pub use error::{HeaderError, ParseError, ReplyContext, TransactionError};
pub use header::{CSeq, Contact, Header, HeaderName, Headers, Via};
pub use message::{Message, Request, Response, SipMessage};
pub use method::Method;
pub use parse::{Framed, StreamFramer, parse_message};
pub use status::StatusCode;
pub use text::Param;
pub use transaction::{
    TimerConfig, TransactionConfig, TransactionLayer, TxEvent, TxKey, random_token,
};
pub use transport::{ConnId, Peer, Transmit, Transport};
pub use uri::{NameAddr, Scheme, Uri};
