//! RFC 3264 offer/answer for one audio stream, as pure functions.
//!
//! Meet first: [`LocalCapabilities`] (our codecs in order of preference and
//! the options around them), [`answer`] (an incoming offer → our answer and a
//! [`Negotiated`] result, or `NotAcceptable` → SIP `488`), [`offer`] and
//! [`accept_answer`] for the outgoing side. [`crate::SdpSession`] wraps these
//! with the origin/version bookkeeping that re-INVITEs need.
//!
//! Rules we follow, and why:
//! - Only the first acceptable audio stream is used; every other `m=` line is
//!   answered with port 0 in the same position (RFC 3264 §6), so video,
//!   T.38 images and extra audio streams are politely refused.
//! - The answer carries exactly one codec (plus `telephone-event` when the
//!   offer has it at that codec's clock rate). A single-codec answer means the
//!   peer cannot switch codecs mid-call behind our back, so the media engine
//!   needs one decoder per participant.
//! - The answer uses the offerer's payload type numbers; codecs are matched by
//!   name (case-insensitively), clock rate and channels, with static types
//!   0, 8, 9 recognised without `a=rtpmap`.
//! - Transport: plain RTP (`RTP/AVP`, and `RTP/AVPF`, whose feedback we may
//!   ignore). SRTP and DTLS offers are not acceptable here: the answer would
//!   lie about encryption.
//! - `c=0.0.0.0` (RFC 2543 hold) means the offerer does not want media.
//!
//! No I/O, no clock, no randomness: the caller supplies the origin and our
//! RTP address.

use std::net::SocketAddr;

use crate::codec::{Codec, FmtpParams, Format, identify, identify_rtpmap};
use crate::error::{InvalidAnswer, NegotiationError, NotAcceptable};
use crate::model::{
    Attribute, Connection, Direction, Extmap, Fmtp, Media, MediaKind, Origin, Proto, Session,
};

/// The RFC 6464 client-to-mixer audio level header extension.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Packetisation time when nobody says otherwise (RFC 3551 default for
/// G.711/G.722, and what every SIP phone uses).
pub const DEFAULT_PTIME: u32 = 20;

/// The RFC 4733 events we declare: DTMF 0–9, *, #, A–D and flash.
const TELEPHONE_EVENTS: &str = "0-16";

/// One codec we support, as we write it in our own offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecConfig {
    /// The codec.
    pub codec: Codec,
    /// The payload type in our offers: the static one for G.711/G.722, a
    /// dynamic one (96–127) for Opus. Answers use the offerer's numbers.
    pub payload_type: u8,
    /// The `a=fmtp` parameters we declare, i.e. what we want to receive
    /// (`useinbandfec=1` for Opus).
    pub fmtp: Option<String>,
}

impl CodecConfig {
    /// The codec with its usual payload type (111 for Opus, as browsers use)
    /// and parameters (in-band FEC for Opus).
    pub fn standard(codec: Codec) -> Self {
        CodecConfig {
            codec,
            payload_type: codec.static_payload_type().unwrap_or(111),
            fmtp: (codec == Codec::Opus).then(|| "useinbandfec=1".to_owned()),
        }
    }
}

/// `telephone-event` at one clock rate, as we write it in our own offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEventConfig {
    /// RTP clock rate; must equal the audio codec's for the events to share
    /// its stream (RFC 4733 §2.1).
    pub clock_rate: u32,
    /// Payload type in our offers.
    pub payload_type: u8,
}

/// What we can do, in the order we prefer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCapabilities {
    /// Supported codecs, most preferred first. In our offers, entries whose
    /// payload type is already taken by an earlier entry are skipped.
    pub codecs: Vec<CodecConfig>,
    /// `telephone-event` at each clock rate we use; empty to refuse RFC 4733
    /// (DTMF then needs SIP INFO or in-band tones).
    pub telephone_events: Vec<TelephoneEventConfig>,
    /// The packetisation time we ask to receive, in ms.
    pub ptime: u32,
    /// Pick the offerer's first common codec instead of ours.
    pub honour_offerer_order: bool,
    /// Among common codecs, first consider those the offer pairs with a
    /// `telephone-event` at their clock rate. Room PINs and key menus need
    /// reliable DTMF, and an offer of Opus with only `telephone-event/8000`
    /// (several softphones do this) would otherwise leave Opus without
    /// RFC 4733 events; G.722 with events is the better call.
    pub prefer_codecs_with_telephone_event: bool,
    /// Accept and offer RTP/RTCP multiplexing on one port (RFC 5761).
    pub rtcp_mux: bool,
    /// Accept and offer the RFC 6464 audio level header extension, used to
    /// skip decoding silent participants.
    pub audio_level: bool,
}

impl Default for LocalCapabilities {
    /// Opus (in-band FEC), G.722, PCMU, PCMA; telephone-event at 8 kHz (101)
    /// and 48 kHz (110); ptime 20; our order, codecs with DTMF events first;
    /// rtcp-mux and audio level on.
    fn default() -> Self {
        LocalCapabilities {
            codecs: [Codec::Opus, Codec::G722, Codec::Pcmu, Codec::Pcma]
                .into_iter()
                .map(CodecConfig::standard)
                .collect(),
            telephone_events: vec![
                TelephoneEventConfig {
                    clock_rate: 8_000,
                    payload_type: 101,
                },
                TelephoneEventConfig {
                    clock_rate: 48_000,
                    payload_type: 110,
                },
            ],
            ptime: DEFAULT_PTIME,
            honour_offerer_order: false,
            prefer_codecs_with_telephone_event: true,
            rtcp_mux: true,
            audio_level: true,
        }
    }
}

impl LocalCapabilities {
    fn codec(&self, codec: Codec) -> Option<(usize, &CodecConfig)> {
        self.codecs
            .iter()
            .enumerate()
            .find(|(_, c)| c.codec == codec)
    }

    fn supports_telephone_event(&self, clock_rate: u32) -> bool {
        self.telephone_events
            .iter()
            .any(|t| t.clock_rate == clock_rate)
    }
}

/// The outcome of a successful negotiation: everything the media engine needs
/// to send and receive the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Index of the audio `m=` line in the offer (and answer).
    pub media_index: usize,
    /// Where to send RTP. Unspecified (`0.0.0.0`) when the peer holds the call
    /// the RFC 2543 way; `direction` then forbids sending.
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP: `a=rtcp`, else RTP port + 1, else (muxed) the RTP
    /// address. `None` only if the peer's RTP port is 65535 and it named no
    /// RTCP port.
    pub remote_rtcp: Option<SocketAddr>,
    /// RTP and RTCP share one port in both directions (RFC 5761).
    pub rtcp_mux: bool,
    /// The audio codec.
    pub codec: NegotiatedCodec,
    /// RFC 4733 events on the same stream, if both sides do them at the
    /// codec's clock rate.
    pub telephone_event: Option<NegotiatedTelephoneEvent>,
    /// Packetisation time to send with, in ms (the peer's `a=ptime`, capped
    /// by its `a=maxptime`; our own default when it states none).
    pub ptime: u32,
    /// What we may do, from our side: `can_send()` false means the peer has
    /// us on hold, `can_receive()` false means we hold the peer.
    pub direction: Direction,
    /// The peer's direction from its own point of view (with `c=0.0.0.0`
    /// read as "do not send to me"): `can_receive()` false means the peer
    /// holds us and will likely play music on hold.
    pub remote_direction: Direction,
    /// The RFC 6464 audio level extension id, if both sides use it.
    pub audio_level_id: Option<u8>,
}

/// The chosen codec and its payload type numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedCodec {
    /// The codec.
    pub codec: Codec,
    /// Payload type on packets we send.
    pub payload_type: u8,
    /// Payload type on packets we receive. Equal to `payload_type` except when
    /// a peer answered our offer with its own numbering (RFC 3264 allows it).
    pub receive_payload_type: u8,
    /// The peer's `a=fmtp` parameters: how it wants to receive, which governs
    /// how we encode (for Opus, `useinbandfec=1` asks us to send FEC).
    pub remote_fmtp: Option<String>,
    /// Our `a=fmtp` parameters for this codec.
    pub local_fmtp: Option<String>,
}

impl NegotiatedCodec {
    /// The encoding name.
    pub fn name(&self) -> &'static str {
        self.codec.encoding_name()
    }

    /// The RTP clock rate.
    pub fn clock_rate(&self) -> u32 {
        self.codec.clock_rate()
    }

    /// The SDP channel count.
    pub fn channels(&self) -> u16 {
        self.codec.channels()
    }

    /// The peer's fmtp parameters, parsed.
    pub fn remote_params(&self) -> FmtpParams<'_> {
        FmtpParams::new(self.remote_fmtp.as_deref().unwrap_or(""))
    }

    /// Whether we should put Opus in-band FEC in what we send.
    pub fn send_inband_fec(&self) -> bool {
        self.codec == Codec::Opus && self.remote_params().flag("useinbandfec")
    }
}

/// RFC 4733 events agreed for the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedTelephoneEvent {
    /// Payload type on events we send.
    pub payload_type: u8,
    /// Payload type on events we receive.
    pub receive_payload_type: u8,
    /// Clock rate (the audio codec's).
    pub clock_rate: u32,
    /// The peer's event list (`0-16`), if it gave one.
    pub remote_events: Option<String>,
}

/// Our answer to an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The description to send back.
    pub session: Session,
    /// What was agreed.
    pub negotiated: Negotiated,
}

/// Builds our initial offer: one audio stream with every codec in `caps`.
pub fn offer(
    caps: &LocalCapabilities,
    origin: &Origin,
    rtp: SocketAddr,
    direction: Direction,
) -> Session {
    let plan = OfferPlan::from_capabilities(caps);
    build_offer(&plan, origin, rtp, direction, &[], 0)
}

/// Answers `offer` (RFC 3264 §6) with our best common codec.
///
/// `origin` is ours (see [`crate::SdpSession`] for keeping it across
/// re-INVITEs), `rtp` where we receive, `direction` what we want (`SendRecv`,
/// or `SendOnly` while we hold the call).
pub fn answer(
    offer: &Session,
    caps: &LocalCapabilities,
    origin: &Origin,
    rtp: SocketAddr,
    direction: Direction,
) -> Result<Answer, NegotiationError> {
    answer_preferring(offer, caps, origin, rtp, direction, None)
}

/// Like [`answer`], but keeps `sticky` if the offer still has it, so that a
/// re-INVITE does not switch codecs mid-call.
pub(crate) fn answer_preferring(
    offer: &Session,
    caps: &LocalCapabilities,
    origin: &Origin,
    rtp: SocketAddr,
    direction: Direction,
    sticky: Option<Codec>,
) -> Result<Answer, NegotiationError> {
    let mut best_reason = NotAcceptable::NoAudio;
    let mut chosen = None;
    for (index, media) in offer.media.iter().enumerate() {
        if media.kind != MediaKind::Audio || media.port == 0 {
            continue;
        }
        match select_audio(offer, index, caps, direction, sticky) {
            Ok(selection) => {
                chosen = Some(selection);
                break;
            }
            Err(reason) => best_reason = best_reason.max(reason),
        }
    }
    let Some(selection) = chosen else {
        return Err(NegotiationError::NotAcceptable(best_reason));
    };

    let mut session = Session::new(origin.clone());
    session.connection = Some(Connection::from_ip(rtp.ip()));
    for (index, media) in offer.media.iter().enumerate() {
        if index == selection.negotiated.media_index {
            session
                .media
                .push(answer_media(media, &selection, caps, rtp.port()));
        } else {
            session.media.push(rejected(media));
        }
    }
    Ok(Answer {
        session,
        negotiated: selection.negotiated,
    })
}

/// Checks the peer's `answer` against `our_offer` and extracts what was
/// agreed. The answer may reorder or drop our codecs and use its own payload
/// type numbers, but may not bring codecs we did not offer.
pub fn accept_answer(
    our_offer: &Session,
    answer: &Session,
) -> Result<Negotiated, NegotiationError> {
    let invalid = NegotiationError::InvalidAnswer;
    let index = our_offer
        .media
        .iter()
        .position(|m| m.kind == MediaKind::Audio && m.port != 0)
        .ok_or(invalid(InvalidAnswer::OfferHasNoAudio))?;
    if answer.media.len() != our_offer.media.len() {
        return Err(invalid(InvalidAnswer::MediaCountMismatch));
    }
    let ours = &our_offer.media[index];
    let theirs = &answer.media[index];
    if theirs.kind != MediaKind::Audio {
        return Err(invalid(InvalidAnswer::MediaKindMismatch));
    }
    if theirs.port == 0 {
        return Err(NegotiationError::AudioRejected);
    }

    // What a payload type of the answer means: its own rtpmap, else ours for
    // the same number (answers often omit rtpmap lines), else static.
    let meaning = |pt: u8| match theirs.rtpmap(pt) {
        Some(map) => identify_rtpmap(map),
        None => identify(ours, pt),
    };
    // The payload type the peer will send us for `wanted`: the answer's own
    // number when our offer used the same one, else our number for it.
    let our_pt_for = |wanted: Format, answered: u8| {
        let mut matching = ours
            .payload_types()
            .filter(|p| identify(ours, *p) == wanted);
        let first = matching.next()?;
        Some(if first == answered || matching.any(|p| p == answered) {
            answered
        } else {
            first
        })
    };

    let (codec, send_pt, receive_pt) = theirs
        .payload_types()
        .find_map(|pt| match meaning(pt) {
            Format::Audio(codec) => {
                our_pt_for(Format::Audio(codec), pt).map(|ours| (codec, pt, ours))
            }
            _ => None,
        })
        .ok_or(invalid(InvalidAnswer::NoOfferedCodec))?;

    let te_format = Format::TelephoneEvent(codec.clock_rate());
    let telephone_event = theirs.payload_types().find_map(|pt| {
        if meaning(pt) != te_format {
            return None;
        }
        let receive = our_pt_for(te_format, pt)?;
        Some(NegotiatedTelephoneEvent {
            payload_type: pt,
            receive_payload_type: receive,
            clock_rate: codec.clock_rate(),
            remote_events: theirs.fmtp(pt).map(|f| f.params.clone()),
        })
    });

    let transport = remote_transport(answer, index, ours.rtcp_mux())
        .ok_or(invalid(InvalidAnswer::NoConnectionAddress))?;
    let their_direction = held(theirs.effective_direction(answer), transport.hold);
    let direction = ours
        .effective_direction(our_offer)
        .intersect(their_direction.reversed());
    let our_default = ours.ptime().unwrap_or(DEFAULT_PTIME);

    let offered_level = audio_level_extmap(our_offer, ours).is_some();
    let audio_level_id = audio_level_extmap(answer, theirs)
        .filter(|_| offered_level)
        .and_then(|e| u8::try_from(e.id).ok())
        .filter(|id| *id != 0);

    Ok(Negotiated {
        media_index: index,
        remote_rtp: transport.rtp,
        remote_rtcp: transport.rtcp,
        rtcp_mux: transport.rtcp_mux,
        codec: NegotiatedCodec {
            codec,
            payload_type: send_pt,
            receive_payload_type: receive_pt,
            remote_fmtp: theirs.fmtp(send_pt).map(|f| f.params.clone()),
            local_fmtp: ours.fmtp(receive_pt).map(|f| f.params.clone()),
        },
        telephone_event,
        ptime: send_ptime(theirs, our_default),
        direction,
        remote_direction: their_direction,
        audio_level_id,
    })
}

/// The result of examining one audio `m=` line of an offer.
struct Selection {
    negotiated: Negotiated,
    /// The offer's rtpmap lines for the chosen codec and telephone-event, so
    /// the answer repeats them exactly as the offerer wrote them.
    codec_rtpmap: Option<crate::RtpMap>,
    te_rtpmap: Option<crate::RtpMap>,
}

fn select_audio(
    offer: &Session,
    index: usize,
    caps: &LocalCapabilities,
    local_direction: Direction,
    sticky: Option<Codec>,
) -> Result<Selection, NotAcceptable> {
    let media = &offer.media[index];
    if !matches!(media.proto, Proto::RtpAvp | Proto::RtpAvpf) {
        return Err(NotAcceptable::UnsupportedTransport);
    }

    let te_pt_for = |codec: Codec| {
        if !caps.supports_telephone_event(codec.clock_rate()) {
            return None;
        }
        let wanted = Format::TelephoneEvent(codec.clock_rate());
        media
            .payload_types()
            .find(|p| identify(media, *p) == wanted)
    };

    // (rank, codec, offered payload type); lowest rank wins, ties go to the
    // first seen so a codec offered twice keeps its first payload type.
    let mut best: Option<((bool, usize), Codec, u8)> = None;
    for (position, pt) in media.payload_types().enumerate() {
        let Format::Audio(codec) = identify(media, pt) else {
            continue;
        };
        let Some((preference, _)) = caps.codec(codec) else {
            continue;
        };
        let order = if sticky == Some(codec) {
            0
        } else if caps.honour_offerer_order {
            position + 1
        } else {
            preference + 1
        };
        let lacks_events = sticky != Some(codec)
            && caps.prefer_codecs_with_telephone_event
            && te_pt_for(codec).is_none();
        let rank = (lacks_events, order);
        if best.is_none_or(|(r, _, _)| rank < r) {
            best = Some((rank, codec, pt));
        }
    }
    let (_, codec, pt) = best.ok_or(NotAcceptable::NoCommonCodec)?;

    let transport =
        remote_transport(offer, index, caps.rtcp_mux).ok_or(NotAcceptable::NoConnectionAddress)?;
    let offer_direction = held(media.effective_direction(offer), transport.hold);

    let te_pt = te_pt_for(codec);
    let telephone_event = te_pt.map(|p| NegotiatedTelephoneEvent {
        payload_type: p,
        receive_payload_type: p,
        clock_rate: codec.clock_rate(),
        remote_events: media.fmtp(p).map(|f| f.params.clone()),
    });

    let audio_level_id = audio_level_extmap(offer, media)
        .filter(|_| caps.audio_level)
        .and_then(|e| u8::try_from(e.id).ok())
        .filter(|id| *id != 0);

    let local_fmtp = caps.codec(codec).and_then(|(_, c)| c.fmtp.clone());
    Ok(Selection {
        negotiated: Negotiated {
            media_index: index,
            remote_rtp: transport.rtp,
            remote_rtcp: transport.rtcp,
            rtcp_mux: transport.rtcp_mux,
            codec: NegotiatedCodec {
                codec,
                payload_type: pt,
                receive_payload_type: pt,
                remote_fmtp: media.fmtp(pt).map(|f| f.params.clone()),
                local_fmtp,
            },
            telephone_event,
            ptime: send_ptime(media, caps.ptime),
            direction: offer_direction.reversed().intersect(local_direction),
            remote_direction: offer_direction,
            audio_level_id,
        },
        codec_rtpmap: media.rtpmap(pt).cloned(),
        te_rtpmap: te_pt.and_then(|p| media.rtpmap(p).cloned()),
    })
}

fn answer_media(
    offered: &Media,
    selection: &Selection,
    caps: &LocalCapabilities,
    port: u16,
) -> Media {
    let n = &selection.negotiated;
    let codec = &n.codec;
    let mut formats = vec![codec.payload_type.to_string()];
    if let Some(te) = &n.telephone_event {
        formats.push(te.payload_type.to_string());
    }
    let mut media = Media::new(MediaKind::Audio, port, offered.proto.clone(), formats);
    let attrs = &mut media.attributes;
    attrs.push(Attribute::RtpMap(
        selection
            .codec_rtpmap
            .clone()
            .unwrap_or_else(|| codec.codec.rtpmap(codec.payload_type)),
    ));
    if let Some(params) = &codec.local_fmtp {
        attrs.push(fmtp(codec.payload_type, params));
    }
    if let Some(te) = &n.telephone_event {
        attrs.push(Attribute::RtpMap(
            selection
                .te_rtpmap
                .clone()
                .unwrap_or_else(|| telephone_event_rtpmap(te.payload_type, te.clock_rate)),
        ));
        attrs.push(fmtp(te.payload_type, TELEPHONE_EVENTS));
    }
    attrs.push(Attribute::Ptime(caps.ptime));
    attrs.push(Attribute::Direction(n.direction));
    if n.rtcp_mux {
        attrs.push(Attribute::RtcpMux);
    }
    if let Some(id) = n.audio_level_id {
        attrs.push(audio_level_attribute(id));
    }
    media
}

/// The answer to an `m=` line we do not take: same type, protocol and
/// formats, port 0, nothing else (RFC 3264 §6).
fn rejected(offered: &Media) -> Media {
    Media::new(
        offered.kind.clone(),
        0,
        offered.proto.clone(),
        offered.formats.clone(),
    )
}

/// What to put in our audio `m=` line when offering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OfferPlan {
    /// (codec, payload type, our fmtp)
    pub codecs: Vec<(Codec, u8, Option<String>)>,
    /// (payload type, clock rate)
    pub telephone_events: Vec<(u8, u32)>,
    pub ptime: u32,
    pub rtcp_mux: bool,
    pub audio_level_id: Option<u8>,
}

impl OfferPlan {
    pub(crate) fn from_capabilities(caps: &LocalCapabilities) -> Self {
        let mut used = [false; 128];
        let mut take = |pt: u8| {
            let slot = used.get_mut(usize::from(pt));
            match slot {
                Some(s) if !*s => {
                    *s = true;
                    true
                }
                _ => false,
            }
        };
        let codecs: Vec<_> = caps
            .codecs
            .iter()
            .filter(|c| take(c.payload_type))
            .map(|c| (c.codec, c.payload_type, c.fmtp.clone()))
            .collect();
        let telephone_events = caps
            .telephone_events
            .iter()
            .filter(|t| {
                codecs
                    .iter()
                    .any(|(c, _, _)| c.clock_rate() == t.clock_rate)
            })
            .filter(|t| take(t.payload_type))
            .map(|t| (t.payload_type, t.clock_rate))
            .collect();
        OfferPlan {
            codecs,
            telephone_events,
            ptime: caps.ptime,
            rtcp_mux: caps.rtcp_mux,
            audio_level_id: caps.audio_level.then_some(1),
        }
    }

    /// A re-offer that keeps what was agreed: same codec, same payload types
    /// (the ones we receive), no surprise for the peer.
    pub(crate) fn pinned(negotiated: &Negotiated, caps: &LocalCapabilities) -> Self {
        let codec = &negotiated.codec;
        OfferPlan {
            codecs: vec![(
                codec.codec,
                codec.receive_payload_type,
                codec.local_fmtp.clone(),
            )],
            telephone_events: negotiated
                .telephone_event
                .iter()
                .map(|t| (t.receive_payload_type, t.clock_rate))
                .collect(),
            ptime: caps.ptime,
            rtcp_mux: negotiated.rtcp_mux,
            audio_level_id: negotiated.audio_level_id,
        }
    }
}

/// Builds an offer. `layout` is the previous session's `m=` lines (RFC 3264
/// §8: a re-offer keeps them all, in order); the one at `audio_index` carries
/// our audio, the others are written disabled. With an empty layout the
/// offer has just our audio line.
pub(crate) fn build_offer(
    plan: &OfferPlan,
    origin: &Origin,
    rtp: SocketAddr,
    direction: Direction,
    layout: &[Media],
    audio_index: usize,
) -> Session {
    let mut session = Session::new(origin.clone());
    session.connection = Some(Connection::from_ip(rtp.ip()));
    let audio = offer_media(plan, rtp.port(), direction);
    if layout.is_empty() {
        session.media.push(audio);
        return session;
    }
    let mut audio = Some(audio);
    for (index, previous) in layout.iter().enumerate() {
        match audio.take_if(|_| index == audio_index) {
            Some(a) => session.media.push(a),
            None => session.media.push(rejected(previous)),
        }
    }
    if let Some(a) = audio {
        session.media.push(a);
    }
    session
}

fn offer_media(plan: &OfferPlan, port: u16, direction: Direction) -> Media {
    let formats = plan
        .codecs
        .iter()
        .map(|(_, pt, _)| pt.to_string())
        .chain(plan.telephone_events.iter().map(|(pt, _)| pt.to_string()))
        .collect();
    let mut media = Media::new(MediaKind::Audio, port, Proto::RtpAvp, formats);
    let attrs = &mut media.attributes;
    for (codec, pt, params) in &plan.codecs {
        attrs.push(Attribute::RtpMap(codec.rtpmap(*pt)));
        if let Some(params) = params {
            attrs.push(fmtp(*pt, params));
        }
    }
    for (pt, clock) in &plan.telephone_events {
        attrs.push(Attribute::RtpMap(telephone_event_rtpmap(*pt, *clock)));
        attrs.push(fmtp(*pt, TELEPHONE_EVENTS));
    }
    attrs.push(Attribute::Ptime(plan.ptime));
    attrs.push(Attribute::Direction(direction));
    if plan.rtcp_mux {
        attrs.push(Attribute::RtcpMux);
    }
    if let Some(id) = plan.audio_level_id {
        attrs.push(audio_level_attribute(id));
    }
    media
}

fn fmtp(pt: u8, params: &str) -> Attribute {
    Attribute::Fmtp(Fmtp {
        format: pt.to_string(),
        params: params.to_owned(),
    })
}

fn telephone_event_rtpmap(pt: u8, clock_rate: u32) -> crate::RtpMap {
    crate::RtpMap {
        payload_type: pt,
        encoding: "telephone-event".to_owned(),
        clock_rate,
        channels: None,
    }
}

fn audio_level_attribute(id: u8) -> Attribute {
    Attribute::Extmap(Extmap {
        id: u16::from(id),
        direction: None,
        uri: AUDIO_LEVEL_URI.to_owned(),
        attributes: None,
    })
}

/// The audio level extmap of a section, or of the session when the section
/// has none (RFC 8285 allows both).
fn audio_level_extmap<'a>(session: &'a Session, media: &'a Media) -> Option<&'a Extmap> {
    let is_level = |e: &&Extmap| e.uri.eq_ignore_ascii_case(AUDIO_LEVEL_URI);
    media.extmaps().find(is_level).or_else(|| {
        session.attributes.iter().find_map(|a| match a {
            Attribute::Extmap(e) if is_level(&e) => Some(e),
            _ => None,
        })
    })
}

/// A direction with receiving removed when the peer used the RFC 2543 hold
/// address: it asked not to be sent anything.
fn held(direction: Direction, hold_address: bool) -> Direction {
    if hold_address {
        direction.intersect(Direction::SendOnly)
    } else {
        direction
    }
}

/// The packetisation to send with: the peer's `a=ptime` when sane (10–120
/// ms in steps of 10), else `default`, then capped by its `a=maxptime`.
fn send_ptime(media: &Media, default: u32) -> u32 {
    let sane = |ms: &u32| (10..=120).contains(ms) && ms.is_multiple_of(10);
    let ptime = media.ptime().filter(sane).unwrap_or(default);
    match media.maxptime().filter(|m| *m >= 10) {
        Some(max) => ptime.min(max - max % 10),
        None => ptime,
    }
}

struct RemoteTransport {
    rtp: SocketAddr,
    rtcp: Option<SocketAddr>,
    rtcp_mux: bool,
    hold: bool,
}

/// Where the peer of media section `index` receives RTP and RTCP. RTCP is
/// muxed only if the peer asks for it and `allow_mux` (we agreed to it).
fn remote_transport(session: &Session, index: usize, allow_mux: bool) -> Option<RemoteTransport> {
    let media = session.media.get(index)?;
    let connection = session.connection_for(index)?;
    let ip = connection.ip()?;
    let rtp = SocketAddr::new(ip, media.port);
    let rtcp_mux = allow_mux && media.rtcp_mux();
    let rtcp = if rtcp_mux {
        Some(rtp)
    } else if let Some(rtcp) = media.rtcp() {
        let ip = rtcp
            .connection
            .as_ref()
            .and_then(Connection::ip)
            .unwrap_or(ip);
        Some(SocketAddr::new(ip, rtcp.port))
    } else {
        media.port.checked_add(1).map(|p| SocketAddr::new(ip, p))
    };
    Some(RemoteTransport {
        rtp,
        rtcp,
        rtcp_mux,
        hold: connection.is_hold_address(),
    })
}
