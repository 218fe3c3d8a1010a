//! Errors: [`ParseError`] for text that is not usable SDP, [`NegotiationError`]
//! for a description that parses but cannot be agreed on, and the crate-wide
//! [`Error`] that wraps both for callers who want one type.

use std::fmt;

/// Anything this crate can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text is not valid SDP.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The description is valid but cannot be negotiated.
    #[error(transparent)]
    Negotiation(#[from] NegotiationError),
}

/// SDP text that could not be parsed, with the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// 1-based line number, or `None` for a problem with the whole input
    /// (such as a missing `o=` line).
    pub line: Option<usize>,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn at(line: usize, kind: ParseErrorKind) -> Self {
        ParseError {
            line: Some(line),
            kind,
        }
    }

    pub(crate) fn whole(kind: ParseErrorKind) -> Self {
        ParseError { line: None, kind }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "invalid SDP at line {line}: {}", self.kind),
            None => write!(f, "invalid SDP: {}", self.kind),
        }
    }
}

/// What is wrong with SDP text. The `&'static str` fields name the offending
/// part so that the message can be passed on (in a SIP `400` or `488` reason,
/// or a log line) without echoing untrusted bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// The input contains no lines.
    #[error("empty body")]
    Empty,
    /// A line is not valid UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// The first line is not `v=`.
    #[error("first line is not v=")]
    MissingVersion,
    /// `v=` is something other than 0.
    #[error("unsupported protocol version (only v=0 exists)")]
    UnsupportedVersion,
    /// A line is not `<letter>=<value>`.
    #[error("line is not <letter>=<value>")]
    MalformedLine,
    /// No `o=` line.
    #[error("missing o= line")]
    MissingOrigin,
    /// A line type that may appear once per section appears twice.
    #[error("duplicate {0}= line")]
    Duplicate(char),
    /// A session-level line appears inside a media section.
    #[error("{0}= line inside a media section")]
    NotAllowedInMedia(char),
    /// `r=` before any `t=`.
    #[error("r= line without a preceding t= line")]
    RepeatWithoutTiming,
    /// A field of a line is missing or malformed.
    #[error("{line_type}= {field} {problem}")]
    Field {
        /// The line type letter (`o`, `c`, `m`, `b`, `t`).
        line_type: char,
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// Why an offer or answer cannot be used. The SIP layer answers `488 Not
/// Acceptable Here` to an INVITE whose offer fails with
/// [`NegotiationError::NotAcceptable`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// The offer has no audio stream we can take.
    #[error("offer not acceptable: {0}")]
    NotAcceptable(NotAcceptable),
    /// The answer refused our audio stream (port 0).
    #[error("the answer rejected the audio stream")]
    AudioRejected,
    /// An answer arrived while we had no offer outstanding.
    #[error("answer without a pending offer")]
    NoPendingOffer,
    /// The answer does not fit our offer (RFC 3264 §6 broken).
    #[error("answer does not match our offer: {0}")]
    InvalidAnswer(InvalidAnswer),
}

/// Why an offer's audio could not be accepted; reported for the most
/// promising audio stream of the offer (the variants are ordered by how far
/// negotiation got, later is more promising).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, thiserror::Error)]
pub enum NotAcceptable {
    /// No enabled `m=audio` line.
    #[error("no audio stream")]
    NoAudio,
    /// Audio only over a transport we do not run (SRTP, DTLS, TCP…).
    #[error("unsupported transport protocol")]
    UnsupportedTransport,
    /// Audio with no codec in common.
    #[error("no common codec")]
    NoCommonCodec,
    /// Audio without a usable `c=` IP address.
    #[error("no usable connection address")]
    NoConnectionAddress,
}

/// How an answer breaks RFC 3264 with respect to our offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAnswer {
    /// The offer we are matching against has no enabled audio stream.
    #[error("our offer has no audio stream")]
    OfferHasNoAudio,
    /// The answer has a different number of `m=` lines than the offer.
    #[error("number of m= lines differs from the offer")]
    MediaCountMismatch,
    /// The answer's `m=` line is not audio where ours is.
    #[error("media type differs from the offer")]
    MediaKindMismatch,
    /// The answer's audio has no codec that we offered.
    #[error("no offered codec in the answer")]
    NoOfferedCodec,
    /// The answer's audio has no usable `c=` IP address.
    #[error("no usable connection address")]
    NoConnectionAddress,
}
