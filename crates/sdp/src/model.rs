//! The SDP data model: a [`Session`] with its [`Origin`], optional
//! [`Connection`], and a list of [`Media`] sections, each carrying an ordered
//! list of [`Attribute`]s.
//!
//! The model keeps everything it reads, including attributes and line types it
//! does not understand, so a parsed session serialises back to the same
//! information. Attributes stay a single ordered list (typed where we care,
//! [`Attribute::Other`] otherwise) rather than being split into fields, because
//! order is meaningful to some peers and a list round-trips exactly; the
//! accessors on [`Media`] and [`Session`] give the typed view.
//!
//! This module does no parsing (see `parse`) and no negotiation (see
//! `negotiate`); `Display` for these types lives in `write`.

use std::net::IpAddr;

/// A whole SDP description (RFC 8866 §5): session-level lines, then media
/// sections in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `o=`: who created the session, and its id and version.
    pub origin: Origin,
    /// `s=`: the session name; `-` by convention when there is none.
    pub name: String,
    /// `i=`: session information.
    pub info: Option<String>,
    /// `u=`: a URI with more information.
    pub uri: Option<String>,
    /// `e=` lines.
    pub emails: Vec<String>,
    /// `p=` lines.
    pub phones: Vec<String>,
    /// `c=` at session level: the default for media sections without one.
    pub connection: Option<Connection>,
    /// `b=` lines at session level.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines with their `r=` lines. Written as `t=0 0` when empty.
    pub timings: Vec<Timing>,
    /// `z=`: time-zone adjustments, kept verbatim.
    pub time_zones: Option<String>,
    /// `k=`: obsolete encryption key, kept verbatim.
    pub key: Option<String>,
    /// `a=` lines at session level, in order.
    pub attributes: Vec<Attribute>,
    /// Lines of a type RFC 8866 does not define, kept verbatim and written after
    /// the session-level attributes.
    pub other_lines: Vec<OtherLine>,
    /// `m=` sections, in order.
    pub media: Vec<Media>,
}

impl Session {
    /// A session with the given origin, name `-`, one `t=0 0` timing and
    /// nothing else.
    pub fn new(origin: Origin) -> Self {
        Session {
            origin,
            name: "-".to_owned(),
            info: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            timings: vec![Timing::default()],
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            other_lines: Vec::new(),
            media: Vec::new(),
        }
    }

    /// The session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// The first session-level attribute named `name` that is not one of the
    /// typed ones, with its value (`None` for a flag such as `a=ice-lite`).
    pub fn other_attribute(&self, name: &str) -> Option<Option<&str>> {
        other_in(&self.attributes, name)
    }

    /// The connection that applies to media section `index`: its own `c=`,
    /// else the session's.
    pub fn connection_for(&self, index: usize) -> Option<&Connection> {
        self.media
            .get(index)
            .and_then(|m| m.connection.as_ref())
            .or(self.connection.as_ref())
    }
}

/// The `o=` line (RFC 8866 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The user's login, `-` when there is none.
    pub username: String,
    /// A numeric string that stays the same for the life of the session.
    /// Kept as text because peers may send more digits than fit in a `u64`.
    pub session_id: String,
    /// Incremented each time the description changes (RFC 3264 §8).
    pub session_version: u64,
    /// Network type, `IN` in practice.
    pub net_type: String,
    /// Address type, `IP4` or `IP6` in practice.
    pub addr_type: String,
    /// The creator's address (or host name).
    pub address: String,
}

impl Origin {
    /// An origin for our own descriptions: username `-`, `IN IP4`/`IN IP6`
    /// following `address`.
    pub fn new(session_id: u64, session_version: u64, address: IpAddr) -> Self {
        let conn = Connection::from_ip(address);
        Origin {
            username: "-".to_owned(),
            session_id: session_id.to_string(),
            session_version,
            net_type: conn.net_type,
            addr_type: conn.addr_type,
            address: conn.address,
        }
    }
}

/// A `c=` line, or the address part of `a=rtcp` (RFC 8866 §5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Network type, `IN` in practice.
    pub net_type: String,
    /// `IP4` or `IP6` in practice.
    pub addr_type: String,
    /// The address as written, possibly with a multicast `/ttl` suffix or a
    /// host name.
    pub address: String,
}

impl Connection {
    /// `IN IP4 <ip>` or `IN IP6 <ip>`.
    pub fn from_ip(ip: IpAddr) -> Self {
        let addr_type = match ip {
            IpAddr::V4(_) => "IP4",
            IpAddr::V6(_) => "IP6",
        };
        Connection {
            net_type: "IN".to_owned(),
            addr_type: addr_type.to_owned(),
            address: ip.to_string(),
        }
    }

    /// The address as an IP, without any multicast suffix; `None` for host
    /// names and non-`IN` networks.
    pub fn ip(&self) -> Option<IpAddr> {
        if self.net_type != "IN" {
            return None;
        }
        let bare = self.address.split('/').next().unwrap_or("");
        bare.parse().ok()
    }

    /// `c=0.0.0.0` (or `::`): the RFC 2543 way of putting a call on hold,
    /// still sent by some phones (RFC 3264 §8.4).
    pub fn is_hold_address(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

/// A `b=<type>:<kbps>` line (RFC 8866 §5.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// `AS`, `CT`, `TIAS`, `RS`, `RR`, …
    pub kind: String,
    /// The value in the unit of `kind` (kbit/s for `AS`, bit/s for `TIAS`).
    pub value: u64,
}

/// A `t=` line and its `r=` lines (RFC 8866 §5.9–5.10).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timing {
    /// NTP start time; 0 for unbounded (the usual value in SIP).
    pub start: u64,
    /// NTP stop time; 0 for unbounded.
    pub stop: u64,
    /// `r=` lines, kept verbatim.
    pub repeats: Vec<String>,
}

/// A line whose type letter RFC 8866 does not define (for example `y=` from
/// some camera firmwares), kept so that it can be written back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherLine {
    /// The type letter.
    pub kind: char,
    /// Everything after `=`.
    pub value: String,
}

/// An `m=` section (RFC 8866 §5.14) with its own lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, …
    pub kind: MediaKind,
    /// Transport port; 0 means the stream is disabled or rejected.
    pub port: u16,
    /// The `/<number of ports>` suffix, if written.
    pub port_count: Option<u16>,
    /// Transport protocol.
    pub proto: Proto,
    /// Media formats: RTP payload type numbers for RTP protocols.
    pub formats: Vec<String>,
    /// `i=`: media title.
    pub info: Option<String>,
    /// `c=` for this section; falls back to the session's.
    pub connection: Option<Connection>,
    /// `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `k=`: obsolete encryption key, kept verbatim.
    pub key: Option<String>,
    /// `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// Lines of an undefined type, written after the attributes.
    pub other_lines: Vec<OtherLine>,
}

impl Media {
    /// A section with the given kind, port, protocol and formats and nothing
    /// else.
    pub fn new(kind: MediaKind, port: u16, proto: Proto, formats: Vec<String>) -> Self {
        Media {
            kind,
            port,
            port_count: None,
            proto,
            formats,
            info: None,
            connection: None,
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
            other_lines: Vec::new(),
        }
    }

    /// The formats that are RTP payload type numbers, in order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok().filter(|pt| *pt <= 127))
    }

    /// All `a=rtpmap` lines, in order.
    pub fn rtpmaps(&self) -> impl Iterator<Item = &RtpMap> {
        self.attributes.iter().filter_map(|a| match a {
            Attribute::RtpMap(m) => Some(m),
            _ => None,
        })
    }

    /// The first `a=rtpmap` for payload type `pt`.
    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps().find(|m| m.payload_type == pt)
    }

    /// The first `a=fmtp` for payload type `pt`.
    pub fn fmtp(&self, pt: u8) -> Option<&Fmtp> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Fmtp(f) if f.payload_type() == Some(pt) => Some(f),
            _ => None,
        })
    }

    /// The section's own direction attribute, if any (see
    /// [`Media::effective_direction`] for the one that applies).
    pub fn direction(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// The direction that applies: this section's, else the session's, else
    /// `sendrecv` (RFC 3264 §5.1).
    pub fn effective_direction(&self, session: &Session) -> Direction {
        self.direction()
            .or_else(|| session.direction())
            .unwrap_or(Direction::SendRecv)
    }

    /// `a=ptime` in milliseconds.
    pub fn ptime(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Ptime(ms) => Some(*ms),
            _ => None,
        })
    }

    /// `a=maxptime` in milliseconds.
    pub fn maxptime(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::MaxPtime(ms) => Some(*ms),
            _ => None,
        })
    }

    /// `a=rtcp`.
    pub fn rtcp(&self) -> Option<&Rtcp> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Rtcp(r) => Some(r),
            _ => None,
        })
    }

    /// Whether `a=rtcp-mux` is present.
    pub fn rtcp_mux(&self) -> bool {
        self.attributes.contains(&Attribute::RtcpMux)
    }

    /// All `a=extmap` lines, in order.
    pub fn extmaps(&self) -> impl Iterator<Item = &Extmap> {
        self.attributes.iter().filter_map(|a| match a {
            Attribute::Extmap(e) => Some(e),
            _ => None,
        })
    }

    /// The first attribute named `name` that is not one of the typed ones,
    /// with its value (`None` for a flag).
    pub fn other_attribute(&self, name: &str) -> Option<Option<&str>> {
        other_in(&self.attributes, name)
    }
}

fn direction_in(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().find_map(|a| match a {
        Attribute::Direction(d) => Some(*d),
        _ => None,
    })
}

fn other_in<'a>(attributes: &'a [Attribute], name: &str) -> Option<Option<&'a str>> {
    attributes.iter().find_map(|a| match a {
        Attribute::Other { name: n, value } if n == name => Some(value.as_deref()),
        _ => None,
    })
}

/// The media type of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaKind {
    /// `audio`
    Audio,
    /// `video`
    Video,
    /// `text`
    Text,
    /// `application`
    Application,
    /// `message`
    Message,
    /// `image` (T.38 fax)
    Image,
    /// Anything else, as written.
    Other(String),
}

impl MediaKind {
    /// The token as written in SDP.
    pub fn as_str(&self) -> &str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Text => "text",
            MediaKind::Application => "application",
            MediaKind::Message => "message",
            MediaKind::Image => "image",
            MediaKind::Other(s) => s,
        }
    }

    pub(crate) fn from_token(s: &str) -> Self {
        match s {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            "text" => MediaKind::Text,
            "application" => MediaKind::Application,
            "message" => MediaKind::Message,
            "image" => MediaKind::Image,
            other => MediaKind::Other(other.to_owned()),
        }
    }
}

/// The transport protocol of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proto {
    /// `RTP/AVP`: plain RTP, the SIP default.
    RtpAvp,
    /// `RTP/AVPF`: RTP with RTCP feedback; interoperates with `RTP/AVP`.
    RtpAvpf,
    /// `RTP/SAVP`: SRTP (SDES keys).
    RtpSavp,
    /// `RTP/SAVPF`: SRTP with feedback.
    RtpSavpf,
    /// `UDP/TLS/RTP/SAVPF`: DTLS-SRTP, as WebRTC offers.
    UdpTlsRtpSavpf,
    /// Anything else, as written (`udptl`, `TCP/MSRP`, …).
    Other(String),
}

impl Proto {
    /// The token as written in SDP.
    pub fn as_str(&self) -> &str {
        match self {
            Proto::RtpAvp => "RTP/AVP",
            Proto::RtpAvpf => "RTP/AVPF",
            Proto::RtpSavp => "RTP/SAVP",
            Proto::RtpSavpf => "RTP/SAVPF",
            Proto::UdpTlsRtpSavpf => "UDP/TLS/RTP/SAVPF",
            Proto::Other(s) => s,
        }
    }

    pub(crate) fn from_token(s: &str) -> Self {
        match s {
            "RTP/AVP" => Proto::RtpAvp,
            "RTP/AVPF" => Proto::RtpAvpf,
            "RTP/SAVP" => Proto::RtpSavp,
            "RTP/SAVPF" => Proto::RtpSavpf,
            "UDP/TLS/RTP/SAVPF" => Proto::UdpTlsRtpSavpf,
            other => Proto::Other(other.to_owned()),
        }
    }
}

/// One `a=` line. The attributes that offer/answer needs are typed; every
/// other one is kept as [`Attribute::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// `a=rtpmap:<pt> <name>/<clock>[/<channels>]`
    RtpMap(RtpMap),
    /// `a=fmtp:<format> <parameters>`
    Fmtp(Fmtp),
    /// `a=ptime:<ms>`
    Ptime(u32),
    /// `a=maxptime:<ms>`
    MaxPtime(u32),
    /// `a=sendrecv`, `a=sendonly`, `a=recvonly`, `a=inactive`
    Direction(Direction),
    /// `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605)
    Rtcp(Rtcp),
    /// `a=rtcp-mux` (RFC 5761)
    RtcpMux,
    /// `a=extmap:<id>[/<direction>] <uri> [<attributes>]` (RFC 8285)
    Extmap(Extmap),
    /// Any other attribute: `a=<name>` or `a=<name>:<value>`.
    Other {
        /// The attribute name.
        name: String,
        /// Everything after the first `:`, or `None` for a flag attribute.
        value: Option<String>,
    },
}

/// `a=rtpmap` (RFC 8866 §6.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// RTP payload type, 0–127.
    pub payload_type: u8,
    /// Encoding name as written; compare case-insensitively.
    pub encoding: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count, if written (the default is 1).
    pub channels: Option<u16>,
}

/// `a=fmtp` (RFC 8866 §6.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    /// The format this applies to; an RTP payload type for RTP media.
    pub format: String,
    /// The format-specific parameters, verbatim (see [`crate::FmtpParams`]).
    pub params: String,
}

impl Fmtp {
    /// The format as an RTP payload type, if it is one.
    pub fn payload_type(&self) -> Option<u8> {
        self.format.parse::<u8>().ok().filter(|pt| *pt <= 127)
    }
}

/// Media direction (RFC 3264 §5.1), always from the point of view of the
/// description that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Send and receive.
    SendRecv,
    /// Send only (the writer is holding the other party).
    SendOnly,
    /// Receive only.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    pub(crate) fn from_token(s: &str) -> Option<Self> {
        match s {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// Built from what may be sent and received.
    pub fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether media may be sent.
    pub fn can_send(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether media may be received.
    pub fn can_receive(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same direction seen from the other side: `sendonly` ↔ `recvonly`.
    pub fn reversed(self) -> Self {
        Direction::from_flags(self.can_receive(), self.can_send())
    }

    /// What both allow.
    pub fn intersect(self, other: Direction) -> Self {
        Direction::from_flags(
            self.can_send() && other.can_send(),
            self.can_receive() && other.can_receive(),
        )
    }
}

/// `a=rtcp` (RFC 3605): where the peer wants RTCP when it is not on RTP
/// port + 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtcp {
    /// The RTCP port.
    pub port: u16,
    /// The RTCP address, when it differs from the media connection.
    pub connection: Option<Connection>,
}

/// `a=extmap` (RFC 8285): an RTP header extension and its local id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extmap {
    /// The id used in RTP header extensions (1–14 one-byte, up to 255
    /// two-byte).
    pub id: u16,
    /// Optional direction after `/`.
    pub direction: Option<Direction>,
    /// The extension's URI, e.g. [`crate::AUDIO_LEVEL_URI`].
    pub uri: String,
    /// Extension attributes after the URI (such as `vad=on`), verbatim.
    pub attributes: Option<String>,
}
