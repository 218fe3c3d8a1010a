//! The PBX's view of the media engine: a small synchronous interface the
//! sans-IO core calls to create rooms and attach call legs to them, plus the
//! SDP ↔ media translations.
//!
//! The runtime implements [`MediaControl`] over `palaver-media-rt` (which
//! binds sockets and posts commands to worker threads without waiting);
//! tests implement it with a fake that records what it was asked. Media
//! events come back into the core through `Pbx::handle_media_event`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use palaver_media::codec::Codec;
use palaver_media::room::{Direction, ParticipantId, ParticipantSpec, RoomCommand};
use palaver_sdp::Negotiated;

/// Identifies a media room for the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaRoomId(pub u64);

/// A media engine failure (ports exhausted, worker gone, unreadable file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("media: {0}")]
pub struct MediaError(pub String);

/// What the core needs from the media engine.
pub trait MediaControl: Send {
    /// A new room mixing at `sample_rate` with at most `max_talkers` mixed.
    fn create_room(
        &mut self,
        sample_rate: u32,
        max_talkers: usize,
    ) -> Result<MediaRoomId, MediaError>;
    /// Binds sockets for a participant; returns its id and local RTP address.
    fn add_participant(
        &mut self,
        room: MediaRoomId,
        spec: ParticipantSpec,
    ) -> Result<(ParticipantId, SocketAddr), MediaError>;
    fn remove_participant(&mut self, room: MediaRoomId, id: ParticipantId);
    fn command(&mut self, room: MediaRoomId, cmd: RoomCommand);
    /// A digit that arrived in a SIP INFO.
    fn dtmf_info(&mut self, room: MediaRoomId, id: ParticipantId, digit: char, duration: Duration);
    /// Plays a WAV file to one participant (or the whole room).
    fn play_file(
        &mut self,
        room: MediaRoomId,
        to: Option<ParticipantId>,
        path: &Path,
        playback: u64,
    );
    /// Music on hold from a WAV file for one participant (`None` stops it).
    fn music_on_hold(&mut self, room: MediaRoomId, id: ParticipantId, path: Option<&Path>);
    /// Starts recording the room mix to `path`; returns the engine's recording id.
    fn start_recording(&mut self, room: MediaRoomId, path: PathBuf) -> Result<u64, MediaError>;
    fn stop_recording(&mut self, room: MediaRoomId);
    fn close_room(&mut self, room: MediaRoomId);
}

/// The media codec for an SDP codec.
pub fn media_codec(c: palaver_sdp::Codec) -> Codec {
    match c {
        palaver_sdp::Codec::Opus => Codec::Opus,
        palaver_sdp::Codec::G722 => Codec::G722,
        palaver_sdp::Codec::Pcmu => Codec::Pcmu,
        palaver_sdp::Codec::Pcma => Codec::Pcma,
    }
}

/// The media direction for an SDP direction (ours).
pub fn media_direction(d: palaver_sdp::Direction) -> Direction {
    match d {
        palaver_sdp::Direction::SendRecv => Direction::SendRecv,
        palaver_sdp::Direction::SendOnly => Direction::SendOnly,
        palaver_sdp::Direction::RecvOnly => Direction::RecvOnly,
        palaver_sdp::Direction::Inactive => Direction::Inactive,
    }
}

/// A natural mixing rate for a codec: no resampling in a two-party call
/// between two phones that speak it.
pub fn rate_for(c: palaver_sdp::Codec) -> u32 {
    match c {
        palaver_sdp::Codec::Opus => 48_000,
        palaver_sdp::Codec::G722 => 16_000,
        palaver_sdp::Codec::Pcmu | palaver_sdp::Codec::Pcma => 8_000,
    }
}

/// A participant spec from what SDP agreed.
pub fn spec_from(n: &Negotiated, in_mix: bool, relay_dtmf: bool) -> ParticipantSpec {
    let mut spec = ParticipantSpec::new(media_codec(n.codec.codec), usable(n.remote_rtp));
    spec.payload_type = n.codec.payload_type;
    spec.telephone_event_pt = n.telephone_event.as_ref().map(|t| t.payload_type);
    spec.ptime = n.ptime;
    spec.remote_rtcp = n.remote_rtcp.and_then(usable);
    spec.rtcp_mux = n.rtcp_mux;
    spec.audio_level_ext_id = n.audio_level_id;
    spec.direction = media_direction(n.direction);
    spec.in_mix = in_mix;
    spec.relay_dtmf = relay_dtmf;
    spec
}

/// A leg whose codec is not known yet (our offer is out): G.711 until the answer.
pub fn placeholder_spec(in_mix: bool, relay_dtmf: bool) -> ParticipantSpec {
    let mut spec = ParticipantSpec::new(Codec::Pcmu, None);
    spec.in_mix = in_mix;
    spec.relay_dtmf = relay_dtmf;
    spec
}

/// Commands that bring a participant in line with a new negotiation.
pub fn update_commands(id: ParticipantId, n: &Negotiated) -> [RoomCommand; 3] {
    [
        RoomCommand::UpdateCodec {
            id,
            codec: media_codec(n.codec.codec),
            payload_type: n.codec.payload_type,
            telephone_event_pt: n.telephone_event.as_ref().map(|t| t.payload_type),
            ptime: n.ptime,
        },
        RoomCommand::UpdateRemote {
            id,
            remote_rtp: usable(n.remote_rtp),
            remote_rtcp: n.remote_rtcp.and_then(usable),
            rtcp_mux: n.rtcp_mux,
        },
        RoomCommand::SetDirection {
            id,
            direction: media_direction(n.direction),
        },
    ]
}

/// `0.0.0.0` (RFC 2543 hold) is no address at all.
fn usable(a: SocketAddr) -> Option<SocketAddr> {
    (!a.ip().is_unspecified() && a.port() != 0).then_some(a)
}

/// The address to write in SDP: the engine may have bound a wildcard.
pub fn advertised(local: SocketAddr, ip: IpAddr) -> SocketAddr {
    if local.ip().is_unspecified() {
        SocketAddr::new(ip, local.port())
    } else {
        local
    }
}

/// Why a request about media is refused: the status and the reason phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: palaver_sip::StatusCode,
    pub(crate) reason: String,
}

impl Refusal {
    pub(crate) fn bad_sdp(e: impl std::fmt::Display) -> Refusal {
        Refusal {
            status: palaver_sip::StatusCode::BAD_REQUEST,
            reason: format!("Bad Request (malformed SDP: {e})"),
        }
    }
    pub(crate) fn not_acceptable(e: impl std::fmt::Display) -> Refusal {
        Refusal {
            status: palaver_sip::StatusCode::NOT_ACCEPTABLE_HERE,
            reason: format!("Not Acceptable Here ({e})"),
        }
    }
    pub(crate) fn unavailable(e: impl std::fmt::Display) -> Refusal {
        Refusal {
            status: palaver_sip::StatusCode::SERVICE_UNAVAILABLE,
            reason: format!("Service Unavailable ({e})"),
        }
    }
}

/// The SDP offer a request carries, if it carries one.
pub(crate) fn offer_in(
    req: &palaver_sip::Request,
) -> Result<Option<palaver_sdp::Session>, Refusal> {
    if req.body.is_empty() {
        return Ok(None);
    }
    palaver_sdp::Session::parse(&req.body)
        .map(Some)
        .map_err(Refusal::bad_sdp)
}

/// What we would agree to `offer`, touching no state: it picks a room's rate
/// before any socket is bound.
pub(crate) fn preview(
    offer: &palaver_sdp::Session,
    caps: &palaver_sdp::LocalCapabilities,
    ip: IpAddr,
) -> Result<Negotiated, Refusal> {
    let origin = palaver_sdp::Origin::new(1, 1, ip);
    let placeholder = SocketAddr::new(ip, 9);
    palaver_sdp::answer(
        offer,
        caps,
        &origin,
        placeholder,
        palaver_sdp::Direction::SendRecv,
    )
    .map(|a| a.negotiated)
    .map_err(Refusal::not_acceptable)
}

/// The body of our 2xx on a leg: our answer to the peer's offer, or — when
/// the request carried none — our own offer, whose answer comes in the ACK.
pub(crate) enum LegBody {
    Answer {
        body: bytes::Bytes,
        negotiated: Negotiated,
    },
    Offer {
        body: bytes::Bytes,
    },
}

pub(crate) fn answer_or_offer(
    sdp: &mut palaver_sdp::SdpSession,
    offer: Option<&palaver_sdp::Session>,
) -> Result<LegBody, Refusal> {
    match offer {
        Some(o) => {
            let a = sdp.handle_offer(o).map_err(Refusal::not_acceptable)?;
            Ok(LegBody::Answer {
                body: bytes::Bytes::from(a.session.to_string()),
                negotiated: a.negotiated,
            })
        }
        None => Ok(LegBody::Offer {
            body: bytes::Bytes::from(sdp.create_offer().to_string()),
        }),
    }
}

/// The peer's answer (in a 2xx or an ACK) to an offer of ours on a leg.
pub(crate) fn take_answer(
    sdp: &mut palaver_sdp::SdpSession,
    body: &[u8],
) -> Result<Negotiated, String> {
    let answer = palaver_sdp::Session::parse(body).map_err(|e| e.to_string())?;
    sdp.handle_answer(&answer)
        .cloned()
        .map_err(|e| e.to_string())
}
