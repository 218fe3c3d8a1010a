//! SDP (RFC 8866) parsing and serialisation, and RFC 3264 offer/answer for
//! the single audio stream of a Palaver call leg.
//!
//! Meet these first:
//! - [`Session`]: a whole description. `Session::parse(&[u8])` reads any
//!   bytes without panicking (a [`ParseError`] names the line and the field
//!   that is wrong); `to_string()` writes it back with CRLF line ends.
//!   Attributes and lines we do not understand are kept and written back.
//! - [`LocalCapabilities`]: the codecs we speak in our order of preference
//!   (Opus with in-band FEC, G.722, PCMU, PCMA), telephone-event, ptime.
//! - [`answer`], [`offer`], [`accept_answer`]: pure offer/answer functions
//!   producing a [`Negotiated`] (remote RTP/RTCP address, codec and payload
//!   types, DTMF payload type, ptime, direction, audio level extension id);
//!   an unusable offer gives [`NegotiationError::NotAcceptable`], which the
//!   SIP layer turns into `488`.
//! - [`SdpSession`]: the per-leg state for re-INVITEs (same session id,
//!   version + 1 on change), hold and resume.
//!
//! What it does not do: SIP, sockets, ICE, SRTP/DTLS, video. Offers that need
//! those are answered with port 0 for those streams, or refused.
//!
//! ```
//! use palaver_sdp::{Direction, LocalCapabilities, Origin, Session, answer};
//!
//! let offer: Session = "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
//!     m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
//!     .parse()
//!     .unwrap();
//! let origin = Origin::new(99, 1, "127.0.0.1".parse().unwrap());
//! let local = "127.0.0.1:4000".parse().unwrap();
//! let done = answer(&offer, &LocalCapabilities::default(), &origin, local, Direction::SendRecv).unwrap();
//! assert_eq!(done.negotiated.codec.name(), "PCMU");
//! assert_eq!(done.negotiated.telephone_event.unwrap().payload_type, 101);
//! let body = done.session.to_string(); // goes into the 200 OK
//! assert!(body.contains("m=audio 4000 RTP/AVP 0 101\r\n"));
//! ```

mod codec;
mod error;
mod model;
mod negotiate;
mod parse;
mod state;
mod write;

#[cfg(test)]
mod client_samples;
#[cfg(test)]
mod proptests;

pub use codec::{Codec, FmtpParams};
pub use error::{
    Error, InvalidAnswer, NegotiationError, NotAcceptable, ParseError, ParseErrorKind,
};
pub use model::{
    Attribute, Bandwidth, Connection, Direction, Extmap, Fmtp, Media, MediaKind, Origin, OtherLine,
    Proto, Rtcp, RtpMap, Session, Timing,
};
pub use negotiate::{
    AUDIO_LEVEL_URI, Answer, CodecConfig, DEFAULT_PTIME, LocalCapabilities, Negotiated,
    NegotiatedCodec, NegotiatedTelephoneEvent, TelephoneEventConfig, accept_answer, answer, offer,
};
pub use state::SdpSession;
