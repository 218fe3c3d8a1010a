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

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    fn local() -> SocketAddr {
        "127.0.0.1:4000".parse().unwrap()
    }

    fn origin() -> Origin {
        Origin::new(42, 1, local().ip())
    }

    /// An offer from 127.0.0.2 with `media` appended verbatim (lines joined
    /// with CRLF).
    fn offer_with(media: &[&str]) -> Session {
        let mut text = String::from(
            "v=0\r\no=- 7 7 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n",
        );
        for line in media {
            text.push_str(line);
            text.push_str("\r\n");
        }
        text.parse().unwrap()
    }

    fn answer_default(offer: &Session) -> Result<Answer, NegotiationError> {
        answer(
            offer,
            &LocalCapabilities::default(),
            &origin(),
            local(),
            Direction::SendRecv,
        )
    }

    fn answered(offer: &Session) -> Answer {
        answer_default(offer).unwrap()
    }

    fn not_acceptable(offer: &Session) -> NotAcceptable {
        match answer_default(offer) {
            Err(NegotiationError::NotAcceptable(reason)) => reason,
            other => panic!("expected NotAcceptable, got {other:?}"),
        }
    }

    const FULL_OFFER: &[&str] = &[
        "m=audio 6000 RTP/AVP 0 8 9 96 101",
        "a=rtpmap:96 opus/48000/2",
        "a=fmtp:96 useinbandfec=1",
        "a=rtpmap:97 telephone-event/48000",
        "a=rtpmap:101 telephone-event/8000",
    ];

    #[test]
    fn our_preference_wins_and_the_offerers_payload_type_is_used() {
        let offer = offer_with(&[
            "m=audio 6000 RTP/AVP 0 8 9 96 97 101",
            "a=rtpmap:96 opus/48000/2",
            "a=fmtp:96 useinbandfec=1",
            "a=rtpmap:97 telephone-event/48000",
            "a=fmtp:97 0-15",
            "a=rtpmap:101 telephone-event/8000",
        ]);
        let a = answered(&offer);
        let n = &a.negotiated;
        assert_eq!(n.codec.codec, Codec::Opus);
        assert_eq!(
            (n.codec.payload_type, n.codec.receive_payload_type),
            (96, 96)
        );
        assert!(n.codec.send_inband_fec());
        assert_eq!(n.codec.local_fmtp.as_deref(), Some("useinbandfec=1"));
        let te = n.telephone_event.as_ref().unwrap();
        assert_eq!((te.payload_type, te.clock_rate), (97, 48000));
        assert_eq!(te.remote_events.as_deref(), Some("0-15"));
        assert_eq!(n.remote_rtp, SocketAddr::new(PEER, 6000));
        assert_eq!(n.remote_rtcp, Some(SocketAddr::new(PEER, 6001)));
        assert_eq!(n.ptime, 20);
        assert_eq!(n.direction, Direction::SendRecv);
        assert_eq!(
            a.session.to_string(),
            "v=0\r\no=- 42 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 96 97\r\n\
             a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\n\
             a=rtpmap:97 telephone-event/48000\r\na=fmtp:97 0-16\r\n\
             a=ptime:20\r\na=sendrecv\r\n"
        );
    }

    #[test]
    fn offerer_order_when_configured() {
        let caps = LocalCapabilities {
            honour_offerer_order: true,
            ..LocalCapabilities::default()
        };
        let a = answer(
            &offer_with(FULL_OFFER),
            &caps,
            &origin(),
            local(),
            Direction::SendRecv,
        )
        .unwrap();
        assert_eq!(a.negotiated.codec.codec, Codec::Pcmu);
        assert_eq!(a.negotiated.codec.payload_type, 0);
        assert_eq!(a.negotiated.telephone_event.unwrap().payload_type, 101);
    }

    #[test]
    fn codec_choice_table() {
        // (m= line and attributes, expected codec and payload type)
        let cases: &[(&[&str], Codec, u8)] = &[
            (&["m=audio 6000 RTP/AVP 8 0"], Codec::Pcmu, 0),
            (&["m=audio 6000 RTP/AVP 8"], Codec::Pcma, 8),
            (&["m=audio 6000 RTP/AVP 0 9"], Codec::G722, 9),
            // Static types may also carry an rtpmap, in any case.
            (
                &["m=audio 6000 RTP/AVP 0", "a=rtpmap:0 pcmu/8000"],
                Codec::Pcmu,
                0,
            ),
            // A dynamic number for a static codec.
            (
                &["m=audio 6000 RTP/AVP 98", "a=rtpmap:98 PCMA/8000"],
                Codec::Pcma,
                98,
            ),
            // An rtpmap overrides the static meaning.
            (
                &["m=audio 6000 RTP/AVP 0", "a=rtpmap:0 PCMA/8000"],
                Codec::Pcma,
                0,
            ),
            (
                &["m=audio 6000 RTP/AVP 18 0", "a=rtpmap:18 G729/8000"],
                Codec::Pcmu,
                0,
            ),
            (
                &["m=audio 6000 RTP/AVP 120 8", "a=rtpmap:120 OPUS/48000/2"],
                Codec::Opus,
                120,
            ),
            // Opus without the mandatory /2 is still Opus.
            (
                &["m=audio 6000 RTP/AVP 120", "a=rtpmap:120 opus/48000"],
                Codec::Opus,
                120,
            ),
            // Opus at a wrong clock is not Opus.
            (
                &["m=audio 6000 RTP/AVP 120 8", "a=rtpmap:120 opus/16000/2"],
                Codec::Pcma,
                8,
            ),
            // An unmapped dynamic type is skipped.
            (&["m=audio 6000 RTP/AVP 96 8"], Codec::Pcma, 8),
            // The same codec twice: the first payload type is used.
            (
                &[
                    "m=audio 6000 RTP/AVP 100 101 8",
                    "a=rtpmap:100 opus/48000/2",
                    "a=rtpmap:101 opus/48000/2",
                ],
                Codec::Opus,
                100,
            ),
            // RTP/AVPF is plain RTP to us.
            (&["m=audio 6000 RTP/AVPF 8"], Codec::Pcma, 8),
        ];
        for (media, codec, pt) in cases {
            let a = answered(&offer_with(media));
            assert_eq!(
                (a.negotiated.codec.codec, a.negotiated.codec.payload_type),
                (*codec, *pt),
                "offer {media:?}"
            );
            // The answer lists exactly the chosen codec.
            assert_eq!(
                a.session.media[0].formats,
                vec![pt.to_string()],
                "offer {media:?}"
            );
        }
    }

    #[test]
    fn no_common_codec_is_not_acceptable() {
        let cases: &[&[&str]] = &[
            &["m=audio 6000 RTP/AVP 18", "a=rtpmap:18 G729/8000"],
            &[
                "m=audio 6000 RTP/AVP 97 101",
                "a=rtpmap:97 iLBC/8000",
                "a=rtpmap:101 telephone-event/8000",
            ],
            &["m=audio 6000 RTP/AVP 96"],
            &["m=audio 6000 RTP/AVP"],
        ];
        for media in cases {
            assert_eq!(
                not_acceptable(&offer_with(media)),
                NotAcceptable::NoCommonCodec,
                "{media:?}"
            );
        }
        let caps = LocalCapabilities {
            codecs: vec![CodecConfig::standard(Codec::Opus)],
            ..LocalCapabilities::default()
        };
        let err = answer(
            &offer_with(&["m=audio 6000 RTP/AVP 0 8 9"]),
            &caps,
            &origin(),
            local(),
            Direction::SendRecv,
        );
        assert_eq!(
            err.unwrap_err(),
            NegotiationError::NotAcceptable(NotAcceptable::NoCommonCodec)
        );
    }

    #[test]
    fn other_not_acceptable_reasons() {
        assert_eq!(not_acceptable(&offer_with(&[])), NotAcceptable::NoAudio);
        assert_eq!(
            not_acceptable(&offer_with(&["m=video 6000 RTP/AVP 96"])),
            NotAcceptable::NoAudio
        );
        assert_eq!(
            not_acceptable(&offer_with(&["m=audio 0 RTP/AVP 0"])),
            NotAcceptable::NoAudio
        );
        assert_eq!(
            not_acceptable(&offer_with(&[
                "m=audio 6000 RTP/SAVP 0",
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x"
            ])),
            NotAcceptable::UnsupportedTransport
        );
        assert_eq!(
            not_acceptable(&offer_with(&[
                "m=audio 6000 UDP/TLS/RTP/SAVPF 111",
                "a=rtpmap:111 opus/48000/2"
            ])),
            NotAcceptable::UnsupportedTransport
        );
        // The most promising reason across streams is reported.
        assert_eq!(
            not_acceptable(&offer_with(&[
                "m=audio 6000 RTP/SAVP 0",
                "m=audio 6002 RTP/AVP 18"
            ])),
            NotAcceptable::NoCommonCodec
        );
        let no_c: Session =
            "v=0\r\no=- 7 7 IN IP4 127.0.0.2\r\ns=-\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
                .parse()
                .unwrap();
        assert_eq!(not_acceptable(&no_c), NotAcceptable::NoConnectionAddress);
        assert_eq!(
            not_acceptable(&offer_with(&[
                "m=audio 6000 RTP/AVP 0",
                "c=IN IP4 pbx.example.com"
            ])),
            NotAcceptable::NoConnectionAddress
        );
    }

    #[test]
    fn telephone_event_mapping_table() {
        let opus_only = LocalCapabilities {
            codecs: vec![CodecConfig::standard(Codec::Opus)],
            ..LocalCapabilities::default()
        };
        let no_events = LocalCapabilities {
            telephone_events: Vec::new(),
            ..LocalCapabilities::default()
        };
        let no_dtmf_preference = LocalCapabilities {
            prefer_codecs_with_telephone_event: false,
            ..LocalCapabilities::default()
        };
        let default = LocalCapabilities::default();
        // (caps, offer, expected codec, expected (send pt, clock) of events)
        type Case<'a> = (
            &'a LocalCapabilities,
            &'a [&'a str],
            Codec,
            Option<(u8, u32)>,
        );
        let cases: &[Case] = &[
            (
                &default,
                &[
                    "m=audio 6000 RTP/AVP 0 96",
                    "a=rtpmap:96 telephone-event/8000",
                ],
                Codec::Pcmu,
                Some((96, 8000)),
            ),
            (
                &default,
                &[
                    "m=audio 6000 RTP/AVP 0 127",
                    "a=rtpmap:127 TELEPHONE-EVENT/8000",
                    "a=fmtp:127 0-15",
                ],
                Codec::Pcmu,
                Some((127, 8000)),
            ),
            (&default, &["m=audio 6000 RTP/AVP 0"], Codec::Pcmu, None),
            // Events only at another clock rate than the codec's are left out.
            (
                &default,
                &[
                    "m=audio 6000 RTP/AVP 0 101",
                    "a=rtpmap:101 telephone-event/48000",
                ],
                Codec::Pcmu,
                None,
            ),
            (
                &default,
                &[
                    "m=audio 6000 RTP/AVP 0 101",
                    "a=rtpmap:101 telephone-event/16000",
                ],
                Codec::Pcmu,
                None,
            ),
            // G.722 events run at its 8000 RTP clock.
            (
                &default,
                &[
                    "m=audio 6000 RTP/AVP 9 101",
                    "a=rtpmap:101 telephone-event/8000",
                ],
                Codec::G722,
                Some((101, 8000)),
            ),
            // Several clocks: the one matching the chosen codec is picked.
            (
                &default,
                &[
                    "m=audio 6000 RTP/AVP 96 0 101 100 99",
                    "a=rtpmap:96 opus/48000/2",
                    "a=rtpmap:101 telephone-event/48000",
                    "a=rtpmap:100 telephone-event/16000",
                    "a=rtpmap:99 telephone-event/8000",
                ],
                Codec::Opus,
                Some((101, 48000)),
            ),
            // Opus offered with 8 kHz events only: G.722 with events wins…
            (
                &default,
                &[
                    "m=audio 6000 RTP/AVP 96 9 101",
                    "a=rtpmap:96 opus/48000/2",
                    "a=rtpmap:101 telephone-event/8000",
                ],
                Codec::G722,
                Some((101, 8000)),
            ),
            // …unless that preference is off…
            (
                &no_dtmf_preference,
                &[
                    "m=audio 6000 RTP/AVP 96 9 101",
                    "a=rtpmap:96 opus/48000/2",
                    "a=rtpmap:101 telephone-event/8000",
                ],
                Codec::Opus,
                None,
            ),
            // …or Opus is all we have in common.
            (
                &opus_only,
                &[
                    "m=audio 6000 RTP/AVP 96 9 101",
                    "a=rtpmap:96 opus/48000/2",
                    "a=rtpmap:101 telephone-event/8000",
                ],
                Codec::Opus,
                None,
            ),
            // Without events on our side, none are answered.
            (
                &no_events,
                &[
                    "m=audio 6000 RTP/AVP 0 101",
                    "a=rtpmap:101 telephone-event/8000",
                ],
                Codec::Pcmu,
                None,
            ),
        ];
        for (caps, media, codec, events) in cases {
            let a = answer(
                &offer_with(media),
                caps,
                &origin(),
                local(),
                Direction::SendRecv,
            )
            .unwrap();
            let n = &a.negotiated;
            let te = n
                .telephone_event
                .as_ref()
                .map(|t| (t.payload_type, t.clock_rate));
            assert_eq!((n.codec.codec, te), (*codec, *events), "offer {media:?}");
            let m = &a.session.media[0];
            match events {
                Some((pt, clock)) => {
                    assert_eq!(m.formats.len(), 2);
                    assert_eq!(m.formats[1], pt.to_string());
                    let map = m.rtpmap(*pt).unwrap();
                    assert!(map.encoding.eq_ignore_ascii_case("telephone-event"));
                    assert_eq!(map.clock_rate, *clock);
                    assert_eq!(m.fmtp(*pt).unwrap().params, "0-16");
                }
                None => assert_eq!(m.formats.len(), 1, "offer {media:?}"),
            }
        }
    }

    #[test]
    fn direction_table() {
        let hold_addr = ["m=audio 6000 RTP/AVP 0", "c=IN IP4 0.0.0.0"];
        // (offer media lines, session-level attribute, our wish, answered direction)
        let cases: &[(&[&str], Option<&str>, Direction, Direction)] = &[
            (
                &["m=audio 6000 RTP/AVP 0"],
                None,
                Direction::SendRecv,
                Direction::SendRecv,
            ),
            (
                &["m=audio 6000 RTP/AVP 0", "a=sendrecv"],
                None,
                Direction::SendRecv,
                Direction::SendRecv,
            ),
            (
                &["m=audio 6000 RTP/AVP 0", "a=sendonly"],
                None,
                Direction::SendRecv,
                Direction::RecvOnly,
            ),
            (
                &["m=audio 6000 RTP/AVP 0", "a=recvonly"],
                None,
                Direction::SendRecv,
                Direction::SendOnly,
            ),
            (
                &["m=audio 6000 RTP/AVP 0", "a=inactive"],
                None,
                Direction::SendRecv,
                Direction::Inactive,
            ),
            // Session-level direction applies; media-level overrides it.
            (
                &["m=audio 6000 RTP/AVP 0"],
                Some("a=sendonly"),
                Direction::SendRecv,
                Direction::RecvOnly,
            ),
            (
                &["m=audio 6000 RTP/AVP 0", "a=sendrecv"],
                Some("a=inactive"),
                Direction::SendRecv,
                Direction::SendRecv,
            ),
            // RFC 2543 hold.
            (&hold_addr, None, Direction::SendRecv, Direction::RecvOnly),
            (
                &["m=audio 6000 RTP/AVP 0", "c=IN IP4 0.0.0.0", "a=recvonly"],
                None,
                Direction::SendRecv,
                Direction::Inactive,
            ),
            (
                &["m=audio 6000 RTP/AVP 0", "c=IN IP6 ::"],
                None,
                Direction::SendRecv,
                Direction::RecvOnly,
            ),
            // We hold.
            (
                &["m=audio 6000 RTP/AVP 0"],
                None,
                Direction::SendOnly,
                Direction::SendOnly,
            ),
            (
                &["m=audio 6000 RTP/AVP 0", "a=sendonly"],
                None,
                Direction::SendOnly,
                Direction::Inactive,
            ),
            (
                &["m=audio 6000 RTP/AVP 0", "a=recvonly"],
                None,
                Direction::SendOnly,
                Direction::SendOnly,
            ),
        ];
        for (media, session_attr, wish, expected) in cases {
            let mut offer = offer_with(media);
            if let Some(attr) = session_attr {
                let line = format!("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\n{attr}\r\n");
                let parsed: Session = line.parse().unwrap();
                offer.attributes = parsed.attributes;
            }
            let a = answer(
                &offer,
                &LocalCapabilities::default(),
                &origin(),
                local(),
                *wish,
            )
            .unwrap();
            assert_eq!(
                a.negotiated.direction, *expected,
                "offer {media:?} {session_attr:?} wish {wish:?}"
            );
            assert_eq!(a.session.media[0].direction(), Some(*expected));
        }
        let held = answered(&offer_with(&hold_addr)).negotiated;
        assert!(!held.direction.can_send());
        assert!(!held.remote_direction.can_receive());
        assert_eq!(held.remote_rtp, "0.0.0.0:6000".parse().unwrap());
    }

    #[test]
    fn rejected_streams_get_port_zero_in_place() {
        let offer = offer_with(&[
            "m=video 7000 RTP/AVP 96 97",
            "a=rtpmap:96 VP8/90000",
            "m=audio 6000 RTP/SAVP 0",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x",
            "m=audio 6002 RTP/AVP 8 101",
            "a=rtpmap:101 telephone-event/8000",
            "m=audio 6004 RTP/AVP 0",
            "m=image 6006 udptl t38",
            "m=application 6008 TCP/MSRP *",
        ]);
        let a = answered(&offer);
        assert_eq!(a.negotiated.media_index, 2);
        assert_eq!(a.negotiated.remote_rtp.port(), 6002);
        let ports: Vec<u16> = a.session.media.iter().map(|m| m.port).collect();
        assert_eq!(ports, vec![0, 0, 4000, 0, 0, 0]);
        let kinds: Vec<&str> = a.session.media.iter().map(|m| m.kind.as_str()).collect();
        assert_eq!(
            kinds,
            vec!["video", "audio", "audio", "audio", "image", "application"]
        );
        assert_eq!(a.session.media[0].formats, vec!["96", "97"]);
        assert_eq!(a.session.media[1].proto, Proto::RtpSavp);
        assert_eq!(a.session.media[4].proto, Proto::Other("udptl".into()));
        for (i, m) in a.session.media.iter().enumerate() {
            if m.port == 0 {
                assert!(
                    m.attributes.is_empty(),
                    "rejected stream {i} has attributes"
                );
            }
        }
        // The answer parses back to itself.
        let text = a.session.to_string();
        assert_eq!(Session::parse(text.as_bytes()).unwrap(), a.session);
    }

    #[test]
    fn ptime_table() {
        // (offer attributes, our ptime, expected send ptime)
        let cases: &[(&[&str], u32, u32)] = &[
            (&[], 20, 20),
            (&[], 30, 30),
            (&["a=ptime:30"], 20, 30),
            (&["a=ptime:10"], 20, 10),
            (&["a=ptime:5"], 20, 20),
            (&["a=ptime:25"], 20, 20),
            (&["a=ptime:0"], 20, 20),
            (&["a=ptime:200"], 20, 20),
            (&["a=maxptime:10"], 20, 10),
            (&["a=ptime:60", "a=maxptime:40"], 20, 40),
            (&["a=ptime:20", "a=maxptime:150"], 20, 20),
            (&["a=ptime:20", "a=maxptime:3"], 20, 20),
        ];
        for (attrs, ours, expected) in cases {
            let mut lines = vec!["m=audio 6000 RTP/AVP 0"];
            lines.extend_from_slice(attrs);
            let caps = LocalCapabilities {
                ptime: *ours,
                ..LocalCapabilities::default()
            };
            let a = answer(
                &offer_with(&lines),
                &caps,
                &origin(),
                local(),
                Direction::SendRecv,
            )
            .unwrap();
            assert_eq!(a.negotiated.ptime, *expected, "{attrs:?} ours {ours}");
            assert_eq!(a.session.media[0].ptime(), Some(*ours));
        }
    }

    #[test]
    fn rtcp_address_table() {
        let mux_off = LocalCapabilities {
            rtcp_mux: false,
            ..LocalCapabilities::default()
        };
        let default = LocalCapabilities::default();
        // (caps, offer, expected rtcp, expected mux)
        let cases: &[(&LocalCapabilities, &[&str], Option<&str>, bool)] = &[
            (
                &default,
                &["m=audio 6000 RTP/AVP 0"],
                Some("127.0.0.2:6001"),
                false,
            ),
            (
                &default,
                &["m=audio 6000 RTP/AVP 0", "a=rtcp:7000"],
                Some("127.0.0.2:7000"),
                false,
            ),
            (
                &default,
                &["m=audio 6000 RTP/AVP 0", "a=rtcp:7000 IN IP4 127.0.0.9"],
                Some("127.0.0.9:7000"),
                false,
            ),
            (
                &default,
                &["m=audio 6000 RTP/AVP 0", "a=rtcp-mux"],
                Some("127.0.0.2:6000"),
                true,
            ),
            (
                &default,
                &["m=audio 6000 RTP/AVP 0", "a=rtcp:6000", "a=rtcp-mux"],
                Some("127.0.0.2:6000"),
                true,
            ),
            (
                &mux_off,
                &["m=audio 6000 RTP/AVP 0", "a=rtcp-mux"],
                Some("127.0.0.2:6001"),
                false,
            ),
            (&default, &["m=audio 65535 RTP/AVP 0"], None, false),
        ];
        for (caps, media, rtcp, mux) in cases {
            let a = answer(
                &offer_with(media),
                caps,
                &origin(),
                local(),
                Direction::SendRecv,
            )
            .unwrap();
            let expected = rtcp.map(|r| r.parse::<SocketAddr>().unwrap());
            assert_eq!(
                (a.negotiated.remote_rtcp, a.negotiated.rtcp_mux),
                (expected, *mux),
                "{media:?}"
            );
            assert_eq!(a.session.media[0].rtcp_mux(), *mux);
        }
    }

    #[test]
    fn audio_level_extension() {
        let in_media = offer_with(&[
            "m=audio 6000 RTP/AVP 0",
            "a=extmap:3 urn:ietf:params:rtp-hdrext:ssrc-audio-level vad=on",
        ]);
        let a = answered(&in_media);
        assert_eq!(a.negotiated.audio_level_id, Some(3));
        assert_eq!(
            a.session.media[0].extmaps().next().unwrap().to_string(),
            "3 urn:ietf:params:rtp-hdrext:ssrc-audio-level"
        );

        let mut in_session = offer_with(&["m=audio 6000 RTP/AVP 0"]);
        in_session.attributes.push(audio_level_attribute(5));
        assert_eq!(answered(&in_session).negotiated.audio_level_id, Some(5));

        let other_ext = offer_with(&[
            "m=audio 6000 RTP/AVP 0",
            "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        ]);
        let a = answered(&other_ext);
        assert_eq!(a.negotiated.audio_level_id, None);
        assert_eq!(a.session.media[0].extmaps().count(), 0);

        let too_big = offer_with(&[
            "m=audio 6000 RTP/AVP 0",
            "a=extmap:300 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        ]);
        assert_eq!(answered(&too_big).negotiated.audio_level_id, None);

        let caps = LocalCapabilities {
            audio_level: false,
            ..LocalCapabilities::default()
        };
        let a = answer(&in_media, &caps, &origin(), local(), Direction::SendRecv).unwrap();
        assert_eq!(a.negotiated.audio_level_id, None);
    }

    #[test]
    fn g722_static_answer_writes_its_8000_clock() {
        let a = answered(&offer_with(&["m=audio 6000 RTP/AVP 9"]));
        assert_eq!(
            a.session.media[0].rtpmap(9).unwrap().to_string(),
            "9 G722/8000"
        );
        assert_eq!(a.negotiated.codec.clock_rate(), 8000);
        assert_eq!(a.negotiated.codec.codec.sample_rate(), 16000);
    }

    #[test]
    fn ipv6_answer_and_peer() {
        let offer: Session = "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
            .parse()
            .unwrap();
        let ours: SocketAddr = "[::1]:4000".parse().unwrap();
        let a = answer(
            &offer,
            &LocalCapabilities::default(),
            &Origin::new(1, 1, ours.ip()),
            ours,
            Direction::SendRecv,
        )
        .unwrap();
        assert_eq!(a.negotiated.remote_rtp, "[::1]:6000".parse().unwrap());
        assert!(a.session.to_string().contains("c=IN IP6 ::1\r\n"));
    }

    #[test]
    fn our_offer_text() {
        let offer = offer(
            &LocalCapabilities::default(),
            &origin(),
            local(),
            Direction::SendRecv,
        );
        assert_eq!(
            offer.to_string(),
            "v=0\r\no=- 42 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 111 9 0 8 101 110\r\n\
             a=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\n\
             a=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
             a=rtpmap:110 telephone-event/48000\r\na=fmtp:110 0-16\r\n\
             a=ptime:20\r\na=sendrecv\r\na=rtcp-mux\r\n\
             a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
        );
    }

    #[test]
    fn offer_skips_colliding_payload_types_and_unused_event_clocks() {
        let caps = LocalCapabilities {
            codecs: vec![
                CodecConfig::standard(Codec::Pcmu),
                CodecConfig {
                    codec: Codec::Opus,
                    payload_type: 101,
                    fmtp: None,
                },
            ],
            audio_level: false,
            rtcp_mux: false,
            ..LocalCapabilities::default()
        };
        let o = offer(&caps, &origin(), local(), Direction::SendOnly);
        let m = &o.media[0];
        // Opus took 101, so 8 kHz events (101) are dropped; 48 kHz ones stay.
        assert_eq!(m.formats, vec!["0", "101", "110"]);
        assert_eq!(m.direction(), Some(Direction::SendOnly));
        assert!(!m.rtcp_mux());
        assert_eq!(m.extmaps().count(), 0);
    }

    /// Our offer answered by our own answerer: both sides agree.
    #[test]
    fn offer_answer_loop_agrees_on_both_sides() {
        let caps = LocalCapabilities::default();
        let peer: SocketAddr = "127.0.0.2:6000".parse().unwrap();
        for wish in [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ] {
            let our_offer = offer(&caps, &origin(), local(), wish);
            let their = answer(
                &our_offer,
                &caps,
                &Origin::new(9, 9, peer.ip()),
                peer,
                Direction::SendRecv,
            )
            .unwrap();
            let ours = accept_answer(&our_offer, &their.session).unwrap();
            assert_eq!(ours.codec.codec, Codec::Opus);
            assert_eq!(ours.codec.payload_type, their.negotiated.codec.payload_type);
            assert_eq!(ours.telephone_event.as_ref().unwrap().payload_type, 110);
            assert_eq!(ours.remote_rtp, peer);
            assert_eq!(their.negotiated.remote_rtp, local());
            assert!(ours.rtcp_mux && their.negotiated.rtcp_mux);
            assert_eq!(ours.audio_level_id, Some(1));
            assert_eq!(ours.direction, wish);
            assert_eq!(their.negotiated.direction, wish.reversed());
        }
    }

    fn our_offer() -> Session {
        offer(
            &LocalCapabilities::default(),
            &origin(),
            local(),
            Direction::SendRecv,
        )
    }

    fn answer_text(media: &[&str]) -> Session {
        let mut text = String::from(
            "v=0\r\no=- 5 5 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n",
        );
        for line in media {
            text.push_str(line);
            text.push_str("\r\n");
        }
        text.parse().unwrap()
    }

    #[test]
    fn accept_answer_table() {
        // (answer media, codec, send pt, receive pt, events send/receive pt)
        type Case<'a> = (&'a [&'a str], Codec, u8, u8, Option<(u8, u8)>);
        let cases: &[Case] = &[
            (&["m=audio 6000 RTP/AVP 0"], Codec::Pcmu, 0, 0, None),
            (
                &[
                    "m=audio 6000 RTP/AVP 8 101",
                    "a=rtpmap:101 telephone-event/8000",
                ],
                Codec::Pcma,
                8,
                8,
                Some((101, 101)),
            ),
            // No rtpmap in the answer for a dynamic type: ours gives its meaning.
            (
                &["m=audio 6000 RTP/AVP 111 110"],
                Codec::Opus,
                111,
                111,
                Some((110, 110)),
            ),
            // The answerer renumbered (allowed): we send its numbers and
            // receive ours.
            (
                &[
                    "m=audio 6000 RTP/AVP 96 97",
                    "a=rtpmap:96 opus/48000/2",
                    "a=rtpmap:97 telephone-event/48000",
                ],
                Codec::Opus,
                96,
                111,
                Some((97, 110)),
            ),
            // Several codecs answered: the first we offered is used.
            (
                &["m=audio 6000 RTP/AVP 18 9 0", "a=rtpmap:18 G729/8000"],
                Codec::G722,
                9,
                9,
                None,
            ),
            // Events at the wrong clock are ignored.
            (&["m=audio 6000 RTP/AVP 0 110"], Codec::Pcmu, 0, 0, None),
        ];
        for (media, codec, send, receive, events) in cases {
            let n = accept_answer(&our_offer(), &answer_text(media)).unwrap();
            let te = n
                .telephone_event
                .as_ref()
                .map(|t| (t.payload_type, t.receive_payload_type));
            assert_eq!(
                (
                    n.codec.codec,
                    n.codec.payload_type,
                    n.codec.receive_payload_type,
                    te
                ),
                (*codec, *send, *receive, *events),
                "answer {media:?}"
            );
        }
    }

    #[test]
    fn accept_answer_reads_transport_direction_and_options() {
        let n = accept_answer(
            &our_offer(),
            &answer_text(&[
                "m=audio 6000 RTP/AVP 111",
                "a=fmtp:111 useinbandfec=1;maxplaybackrate=16000",
                "a=ptime:40",
                "a=recvonly",
                "a=extmap:4 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            ]),
        )
        .unwrap();
        assert_eq!(n.remote_rtp, "127.0.0.2:6000".parse().unwrap());
        assert_eq!(n.remote_rtcp, Some("127.0.0.2:6001".parse().unwrap()));
        assert!(!n.rtcp_mux);
        assert_eq!(n.ptime, 40);
        assert_eq!(n.direction, Direction::SendOnly);
        assert_eq!(n.remote_direction, Direction::RecvOnly);
        assert_eq!(n.audio_level_id, Some(4));
        assert!(n.codec.send_inband_fec());
        assert_eq!(
            n.codec.remote_params().get("maxplaybackrate"),
            Some("16000")
        );
        assert_eq!(n.codec.local_fmtp.as_deref(), Some("useinbandfec=1"));

        // Old-style hold in an answer: we must not send.
        let n = accept_answer(
            &our_offer(),
            &answer_text(&["m=audio 6000 RTP/AVP 0", "c=IN IP4 0.0.0.0"]),
        )
        .unwrap();
        assert_eq!(n.direction, Direction::RecvOnly);
    }

    #[test]
    fn accept_answer_errors() {
        let invalid = NegotiationError::InvalidAnswer;
        let cases: &[(&[&str], NegotiationError)] = &[
            (&["m=audio 0 RTP/AVP 0"], NegotiationError::AudioRejected),
            (&[], invalid(InvalidAnswer::MediaCountMismatch)),
            (
                &["m=audio 6000 RTP/AVP 0", "m=video 0 RTP/AVP 96"],
                invalid(InvalidAnswer::MediaCountMismatch),
            ),
            (
                &["m=video 6000 RTP/AVP 96"],
                invalid(InvalidAnswer::MediaKindMismatch),
            ),
            (
                &["m=audio 6000 RTP/AVP 18", "a=rtpmap:18 G729/8000"],
                invalid(InvalidAnswer::NoOfferedCodec),
            ),
            (
                &["m=audio 6000 RTP/AVP 96", "a=rtpmap:96 iLBC/8000"],
                invalid(InvalidAnswer::NoOfferedCodec),
            ),
            // Only events, no audio codec.
            (
                &["m=audio 6000 RTP/AVP 101"],
                invalid(InvalidAnswer::NoOfferedCodec),
            ),
            (
                &["m=audio 6000 RTP/AVP 0", "c=IN IP4 host.invalid"],
                invalid(InvalidAnswer::NoConnectionAddress),
            ),
        ];
        for (media, expected) in cases {
            assert_eq!(
                accept_answer(&our_offer(), &answer_text(media)).unwrap_err(),
                *expected,
                "{media:?}"
            );
        }
        let no_audio = answer_text(&["m=video 5000 RTP/AVP 96"]);
        assert_eq!(
            accept_answer(&no_audio, &no_audio).unwrap_err(),
            invalid(InvalidAnswer::OfferHasNoAudio)
        );
    }

    #[test]
    fn codecs_we_did_not_offer_are_not_accepted_from_an_answer() {
        let caps = LocalCapabilities {
            codecs: vec![CodecConfig::standard(Codec::Pcma)],
            ..LocalCapabilities::default()
        };
        let o = offer(&caps, &origin(), local(), Direction::SendRecv);
        let err = accept_answer(&o, &answer_text(&["m=audio 6000 RTP/AVP 0"])).unwrap_err();
        assert_eq!(
            err,
            NegotiationError::InvalidAnswer(InvalidAnswer::NoOfferedCodec)
        );
    }

    #[test]
    fn answering_does_not_panic_on_odd_but_valid_offers() {
        let odd: &[&[&str]] = &[
            FULL_OFFER,
            &["m=audio 6000/2 RTP/AVP 0"],
            &["m=audio 6000 RTP/AVP 0 0 0"],
            &["m=audio 6000 RTP/AVP 255 -1 abc 0"],
            &["m=audio 6000 RTP/AVP 0", "a=rtpmap:0 telephone-event/8000"],
            &["m=audio 6000 RTP/AVP 0", "a=fmtp:0"],
            &[
                "m=audio 6000 RTP/AVP 0",
                "a=extmap:0 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            ],
        ];
        for media in odd {
            let _ = answer_default(&offer_with(media));
        }
        // PT 0 remapped to events: nothing usable is left.
        assert_eq!(
            not_acceptable(&offer_with(&[
                "m=audio 6000 RTP/AVP 0",
                "a=rtpmap:0 telephone-event/8000"
            ])),
            NotAcceptable::NoCommonCodec
        );
        assert_eq!(
            answered(&offer_with(&[
                "m=audio 6000 RTP/AVP 0",
                "a=extmap:0 urn:ietf:params:rtp-hdrext:ssrc-audio-level"
            ]))
            .negotiated
            .audio_level_id,
            None
        );
    }
}
