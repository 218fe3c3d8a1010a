//! Errors of the SIP layer.
//!
//! Parsing distinguishes what is wrong so that the reason phrase of a `400`
//! can say it (RFC 3261 lets us put any text in the reason phrase). A
//! [`ParseError`] optionally carries a [`ReplyContext`]: the raw headers needed
//! to answer a request we could not fully understand.

use crate::status::StatusCode;

/// A header value that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    #[error("unterminated <")]
    UnterminatedAngle,
    #[error("bad parameter {0:?}")]
    BadParameter(String),
    #[error("unsupported URI scheme {0:?}")]
    UnsupportedScheme(String),
    #[error("bad URI: {0}")]
    BadUri(&'static str),
    #[error("bad number")]
    BadNumber,
    #[error("{0}")]
    Invalid(&'static str),
}

/// Why a message could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    /// Human readable; used verbatim as the reason phrase of a `400`.
    pub reason: String,
    /// The status to answer with (400, 505, 416, …).
    pub status: StatusCode,
    /// Enough of the request to build a response, when we got that far.
    pub reply: Option<Box<ReplyContext>>,
}

impl ParseError {
    pub(crate) fn new(reason: impl Into<String>) -> ParseError {
        ParseError {
            reason: reason.into(),
            status: StatusCode::BAD_REQUEST,
            reply: None,
        }
    }
}

/// The headers copied into a response to a malformed request: all `Via`
/// lines, `From`, `To`, `Call-ID` and `CSeq`, raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyContext {
    pub is_ack: bool,
    pub via: Vec<String>,
    pub from: String,
    pub to: String,
    pub call_id: String,
    pub cseq: String,
}

/// Errors of the transaction layer's user-facing calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    #[error("no such transaction")]
    NoSuchTransaction,
    #[error("transaction already has a final response")]
    AlreadyCompleted,
    #[error("request has no Via header with a branch")]
    MissingBranch,
    #[error("malformed message: {0}")]
    Malformed(String),
}
