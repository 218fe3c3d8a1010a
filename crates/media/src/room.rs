//! The per-room media engine: everything one conference room (or one
//! two-party call) does with audio, as a sans-IO state machine.
//!
//! Meet first: [`MediaRoom`] with its verbs — `handle_rtp`, `handle_rtcp`,
//! `handle_dtmf_info`, `handle_command` (a [`RoomCommand`]) and
//! `handle_tick` (every 20 ms) in; `poll_transmit` (a [`Transmit`] written
//! into the caller's buffer), `poll_event` (a [`MediaEvent`]),
//! `poll_record_block` and `poll_timeout` out. [`ParticipantSpec`] is what
//! SDP negotiation produced for one leg.
//!
//! Per participant the room owns: RTP receive state and latching, a jitter
//! buffer, decoder (+ resampler to the room rate), DTMF receivers for all
//! three forms and their combiner, talk detection, a playback queue and
//! music on hold, an encoder used when the participant hears something of
//! its own, and RTP/RTCP send state. Listeners hearing the shared mix share
//! one encoded frame per codec and tick.
//!
//! Run loop (the runtime's job): after any `handle_*`, drain `poll_transmit`
//! and `poll_event` to `None`, hand `poll_record_block` to the writer, and
//! call `handle_tick` at `poll_timeout()`. Malformed or unexpected packets
//! are counted and dropped inside `handle_rtp`, never returned as errors.
//! After warm-up, a tick allocates nothing.
//!
//! Which `now`: for `handle_rtp`/`handle_rtcp` the datagram's arrival (the
//! kernel's receive stamp where there is one, not when it was read), for
//! `handle_tick` the tick's nominal time. A runtime that wakes late reads
//! what piled up, then runs each missed tick at its own time and drains
//! between them; the jitter buffers then see no jitter the network did not
//! have. So the two clocks interleave loosely: an arrival may be earlier
//! than the last tick's `now`, and a catch-up tick's `now` earlier than
//! arrivals already handled. Nothing here assumes otherwise (durations
//! between them saturate).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::codec::{AudioDecoder, AudioEncoder, ChunkResampler, Codec, MAX_OPUS_PACKET};
use crate::dtmf::{DtmfCombiner, DtmfSource, Rfc4733Receiver, Rfc4733Sender, ToneDetector};
use crate::error::{Error, Result};
use crate::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use crate::mixer::{Limiter, MixOutput, Mixer, SlotFlags, TalkChange, TalkDetector};
use crate::recorder::{RecordBlock, RecorderTap};
use crate::rtcp::{self, ReportBlock, RtcpPacket, SenderInfo};
use crate::rtp::{self, ReceiveStats, RtpHeader, RtpPacket, SeqVerdict};
use crate::source::{ComfortNoise, Playback, Prompt, Tone};

/// Identifies a participant (chosen by the caller, unique in the room).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u32);

impl std::fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Media direction from the room's side (what SDP's answer says for us).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Send and receive.
    #[default]
    SendRecv,
    /// We send, ignore what arrives (we put the peer on hold with MOH...).
    SendOnly,
    /// We receive but must not send (the peer put us on hold).
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
    fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// One negotiated leg, as SDP offer/answer produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantSpec {
    /// Audio codec.
    pub codec: Codec,
    /// Its payload type.
    pub payload_type: u8,
    /// telephone-event payload type, if negotiated.
    pub telephone_event_pt: Option<u8>,
    /// Packet time in ms (G.711/G.722: any multiple of 10; Opus: sent as
    /// 20 ms frames).
    pub ptime: u32,
    /// Remote RTP address from SDP (replaced by the latched source).
    pub remote_rtp: Option<SocketAddr>,
    /// Remote RTCP address from SDP (`a=rtcp`), else RTP port + 1.
    pub remote_rtcp: Option<SocketAddr>,
    /// RTP and RTCP on one port (RFC 5761).
    pub rtcp_mux: bool,
    /// Only accept this SSRC (when signalling told us).
    pub expected_ssrc: Option<u32>,
    /// Extension id of `urn:ietf:params:rtp-hdrext:ssrc-audio-level`.
    pub audio_level_ext_id: Option<u8>,
    /// Direction.
    pub direction: Direction,
    /// Starts muted (audio not mixed).
    pub muted: bool,
    /// Starts deaf (hears comfort noise).
    pub deaf: bool,
    /// Admitted to the mix. A participant not yet admitted (PIN entry,
    /// waiting for the host) hears only its own prompts and music.
    pub in_mix: bool,
    /// Relay this participant's DTMF to the others (two-party calls).
    pub relay_dtmf: bool,
}

impl ParticipantSpec {
    /// A send/receive leg admitted to the mix, 20 ms, static payload type.
    pub fn new(codec: Codec, remote_rtp: Option<SocketAddr>) -> Self {
        Self {
            codec,
            payload_type: codec.default_payload_type().unwrap_or(111),
            telephone_event_pt: Some(101),
            ptime: 20,
            remote_rtp,
            remote_rtcp: None,
            rtcp_mux: false,
            expected_ssrc: None,
            audio_level_ext_id: None,
            direction: Direction::SendRecv,
            muted: false,
            deaf: false,
            in_mix: true,
            relay_dtmf: false,
        }
    }
}

/// Room settings.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// Mixing rate: 8000, 16000 or 48000.
    pub sample_rate: u32,
    /// Talkers mixed in large rooms.
    pub max_talkers: usize,
    /// Silence after which `RtpTimeout` is reported.
    pub rtp_timeout: Duration,
    /// Periodic `Stats` events (None: only on request).
    pub stats_interval: Option<Duration>,
    /// RTCP report interval per participant.
    pub rtcp_interval: Duration,
    /// RTCP CNAME.
    pub cname: String,
    /// Seed for SSRCs and initial sequence numbers/timestamps.
    pub seed: u64,
    /// NTP time (64-bit) corresponding to the `now` given to
    /// [`MediaRoom::new`] (RTCP sender reports).
    pub ntp_at_start: u64,
    /// Detect in-band DTMF on decoded audio.
    pub inband_dtmf: bool,
    /// Recording block length.
    pub record_block: Duration,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            sample_rate: 8000,
            max_talkers: 4,
            rtp_timeout: Duration::from_secs(30),
            stats_interval: None,
            rtcp_interval: Duration::from_secs(5),
            cname: "palaver".into(),
            seed: 0x5eed,
            ntp_at_start: 0,
            inband_dtmf: true,
            record_block: Duration::from_secs(1),
        }
    }
}

/// A change to the room.
#[derive(Debug, Clone)]
pub enum RoomCommand {
    /// Adds a participant.
    AddParticipant {
        /// Its id.
        id: ParticipantId,
        /// Its negotiated leg.
        spec: ParticipantSpec,
    },
    /// Removes a participant.
    RemoveParticipant {
        /// Who.
        id: ParticipantId,
    },
    /// New remote addresses after a re-INVITE (latching starts again).
    UpdateRemote {
        /// Who.
        id: ParticipantId,
        /// RTP address.
        remote_rtp: Option<SocketAddr>,
        /// RTCP address.
        remote_rtcp: Option<SocketAddr>,
        /// rtcp-mux.
        rtcp_mux: bool,
    },
    /// New codec after a re-INVITE.
    UpdateCodec {
        /// Who.
        id: ParticipantId,
        /// Codec.
        codec: Codec,
        /// Payload type.
        payload_type: u8,
        /// telephone-event payload type.
        telephone_event_pt: Option<u8>,
        /// ptime in ms.
        ptime: u32,
    },
    /// Mute (audio not mixed) or unmute.
    SetMuted {
        /// Who.
        id: ParticipantId,
        /// Muted?
        muted: bool,
    },
    /// Deaf (hears comfort noise) or not.
    SetDeaf {
        /// Who.
        id: ParticipantId,
        /// Deaf?
        deaf: bool,
    },
    /// Admit to (or take out of) the mix.
    SetInMix {
        /// Who.
        id: ParticipantId,
        /// Admitted?
        in_mix: bool,
    },
    /// Hold / resume.
    SetDirection {
        /// Who.
        id: ParticipantId,
        /// New direction.
        direction: Direction,
    },
    /// Queues a tone or prompt for one participant; `PromptFinished` with
    /// the playback's id follows when it ends.
    Play {
        /// Who hears it.
        id: ParticipantId,
        /// What.
        playback: Playback,
    },
    /// Queues a tone or prompt for the whole room (mixed for everyone who
    /// hears, and recorded).
    PlayRoom {
        /// What.
        playback: Playback,
    },
    /// Stops and clears the queue of one participant (or the room's).
    StopPlayback {
        /// Who (None: the room queue).
        id: Option<ParticipantId>,
    },
    /// Music on hold for one participant (replaces the mix while on).
    MusicOnHold {
        /// Who.
        id: ParticipantId,
        /// The music, or None to stop.
        music: Option<Prompt>,
    },
    /// Starts recording the room mix under this id.
    StartRecording {
        /// Recording id (the runtime maps it to a file).
        recording: u64,
    },
    /// Stops recording.
    StopRecording,
    /// Talkers mixed in large rooms.
    SetMaxTalkers(usize),
    /// Sends a DTMF digit to a participant (RFC 4733 if negotiated, else
    /// in-band tone).
    SendDtmf {
        /// Who.
        id: ParticipantId,
        /// Digit.
        digit: char,
        /// Press length.
        duration: Duration,
    },
    /// Emits a `Stats` event now for one participant or all.
    RequestStats {
        /// Who (None: everyone).
        id: Option<ParticipantId>,
    },
}

/// What the room reports.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// One key press (merged across RFC 4733, in-band and SIP INFO).
    Dtmf {
        /// Who pressed.
        participant: ParticipantId,
        /// Digit.
        digit: char,
        /// First form it arrived in.
        source: DtmfSource,
    },
    /// Started talking.
    Talking {
        /// Who.
        participant: ParticipantId,
    },
    /// Stopped talking (always follows a `Talking`).
    StoppedTalking {
        /// Who.
        participant: ParticipantId,
    },
    /// A queued playback ended.
    PromptFinished {
        /// Whose queue (None: room-wide).
        participant: Option<ParticipantId>,
        /// The playback's id.
        id: u64,
        /// false when stopped before its end.
        completed: bool,
    },
    /// No RTP for `RoomConfig::rtp_timeout` while expecting it.
    RtpTimeout {
        /// Who.
        participant: ParticipantId,
    },
    /// The peer's SSRC changed (new stream; state was reset).
    SsrcChanged {
        /// Who.
        participant: ParticipantId,
        /// New SSRC.
        ssrc: u32,
    },
    /// Quality figures.
    Stats {
        /// Who.
        participant: ParticipantId,
        /// Figures.
        stats: ParticipantStats,
    },
}

/// Per-participant quality figures.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ParticipantStats {
    /// RTP packets accepted.
    pub packets_received: u64,
    /// Cumulative packets lost (RFC 3550 count).
    pub packets_lost: i64,
    /// Loss fraction over the last RTCP interval (0–1).
    pub fraction_lost: f32,
    /// Interarrival jitter in ms.
    pub jitter_ms: f64,
    /// Round trip from RTCP, if known.
    pub rtt: Option<Duration>,
    /// Loss fraction the peer reports about our stream (0–1).
    pub remote_fraction_lost: Option<f32>,
    /// Jitter the peer reports about our stream, in ms.
    pub remote_jitter_ms: Option<f64>,
    /// RTP packets sent.
    pub packets_sent: u64,
    /// Packets from other addresses/SSRCs, dropped.
    pub strangers_dropped: u64,
    /// Unparseable packets or wrong payload types, dropped.
    pub malformed_dropped: u64,
    /// Jitter-buffer counters.
    pub jitter_buffer: JitterStats,
    /// Current jitter-buffer target.
    pub jitter_target: Duration,
}

/// Which socket a [`Transmit`] goes out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// RTP (the participant's RTP socket).
    Rtp,
    /// RTCP (RTP socket when muxed, else the RTCP socket).
    Rtcp,
}

/// A datagram written into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Which participant's sockets.
    pub participant: ParticipantId,
    /// RTP or RTCP.
    pub kind: PacketKind,
    /// Destination.
    pub to: SocketAddr,
    /// Bytes written at the start of the buffer.
    pub len: usize,
}

/// Largest datagram `poll_transmit` writes.
pub const MAX_DATAGRAM: usize = 1500;

/// RFC 6464 level (−dBov) at or below which an Opus frame is not decoded.
/// G.711 is always decoded (a table lookup); G.722 too, because its ADPCM
/// decoder must follow every frame to stay in step with the phone.
const SILENT_LEVEL: u8 = 70;

/// Tick length.
pub const TICK: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Common,
    Silence,
    Noise,
    Own,
}

struct SharedEncoder {
    stream: Stream,
    codec: Codec,
    encoder: AudioEncoder,
    resampler: Option<ChunkResampler>,
    pcm: Vec<i16>,
    payload: Vec<u8>,
    len: usize,
    done: bool,
    users: usize,
}

struct Receive {
    stats: ReceiveStats,
    jitter: JitterBuffer,
    decoder: AudioDecoder,
    resampler: Option<ChunkResampler>,
    fifo: Vec<i16>,
    fifo_len: usize,
    codec_frame: usize,
}

struct Send {
    encoder: AudioEncoder,
    resampler: Option<ChunkResampler>,
    pcm: Vec<i16>,
    ssrc: u32,
    seq: u16,
    ts: u32,
    acc: Vec<u8>,
    acc_len: usize,
    opus_ready: bool,
    packet_bytes: usize,
    marker: bool,
    packets: u64,
    octets: u64,
    last_stream: Option<Stream>,
    dtmf: Option<Rfc4733Sender>,
    event_packet: Option<crate::dtmf::EventPacket>,
}

struct Participant {
    id: ParticipantId,
    spec: ParticipantSpec,
    slot: usize,
    rx: Receive,
    tx: Send,
    latched: Option<SocketAddr>,
    latched_ssrc: Option<u32>,
    /// RFC 4733 packets seen in this stream's sequence space. Phones
    /// (baresip, for one) interleave event packets with audio, so audio
    /// sequence numbers skip while a key is down; the jitter buffer must see
    /// those skips as event packets, not as lost audio to conceal.
    events_in_seq: u64,
    last_event_seq: Option<u16>,
    rtcp_from: Option<SocketAddr>,
    last_rx: Option<Instant>,
    timed_out: bool,
    strangers: u64,
    malformed: u64,
    rfc4733: Rfc4733Receiver,
    inband: ToneDetector,
    combiner: DtmfCombiner,
    talk: TalkDetector,
    queue: VecDeque<Playback>,
    moh: Option<Playback>,
    out: Vec<i16>,
    /// Limits the mix plus a prompt played over it (the sum can pass full
    /// scale; saturating would hard-clip).
    overlay_limiter: Limiter,
    /// Whether the last tick laid a prompt over the mix.
    overlay_active: bool,
    next_rtcp: Instant,
    rtcp_buf: [u8; 256],
    rtcp_len: usize,
    lsr: Option<(u32, Instant)>,
    rtt: Option<Duration>,
    remote_loss: Option<f32>,
    remote_jitter: Option<f64>,
    fraction_lost: f32,
}

impl Participant {
    fn flags(&self) -> SlotFlags {
        SlotFlags {
            speak: self.spec.in_mix && !self.spec.muted && self.spec.direction.receives(),
            hear: self.spec.in_mix && !self.spec.deaf,
        }
    }

    fn rtp_destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.spec.remote_rtp)
    }

    fn rtcp_destination(&self) -> Option<SocketAddr> {
        if self.spec.rtcp_mux {
            return self.rtp_destination();
        }
        self.rtcp_from.or(self.spec.remote_rtcp).or_else(|| {
            let mut a = self.rtp_destination()?;
            a.set_port(a.port().checked_add(1)?);
            Some(a)
        })
    }
}

/// Everything for one room. See the module docs.
pub struct MediaRoom {
    cfg: RoomConfig,
    start: Instant,
    frame: usize,
    mixer: Mixer,
    participants: Vec<Participant>,
    index: HashMap<ParticipantId, usize>,
    shared: Vec<SharedEncoder>,
    room_queue: VecDeque<Playback>,
    room_extra: Vec<i16>,
    noise: ComfortNoise,
    noise_pcm: Vec<i16>,
    /// Whether `noise_pcm` holds this tick's comfort noise.
    noise_fresh: bool,
    silence_pcm: Vec<i16>,
    /// Scratch for a prompt laid over a participant's mix.
    overlay_sum: Vec<i32>,
    recorder: RecorderTap,
    events: VecDeque<MediaEvent>,
    next_tick: Instant,
    next_stats: Option<Instant>,
    tx_cursor: usize,
    /// Whether the last tick left datagrams to hand out. Packets are only
    /// produced by ticks, so after the queue was drained every
    /// `poll_transmit` following a `handle_rtp` returns at once instead of
    /// scanning every participant (which would make a busy room's packet
    /// handling quadratic).
    tx_pending: bool,
    rng: u64,
}

impl std::fmt::Debug for MediaRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaRoom")
            .field("rate", &self.cfg.sample_rate)
            .field("participants", &self.participants.len())
            .finish()
    }
}

fn resampler_if(from: u32, to: u32, frames: usize) -> Result<Option<ChunkResampler>> {
    if from == to {
        Ok(None)
    } else {
        ChunkResampler::new(from, to, frames).map(Some)
    }
}

impl MediaRoom {
    /// A room created at `now`.
    pub fn new(now: Instant, cfg: RoomConfig) -> Result<Self> {
        if !matches!(cfg.sample_rate, 8000 | 16000 | 48000) {
            return Err(Error::UnsupportedRate(cfg.sample_rate));
        }
        let frame = cfg.sample_rate as usize / 50;
        let block =
            (cfg.record_block.as_millis() as usize * cfg.sample_rate as usize / 1000).max(frame);
        let next_stats = cfg.stats_interval.map(|d| now + d);
        Ok(Self {
            frame,
            mixer: Mixer::new(frame, cfg.max_talkers),
            participants: Vec::new(),
            index: HashMap::new(),
            shared: Vec::new(),
            room_queue: VecDeque::with_capacity(8),
            room_extra: vec![0; frame],
            noise: ComfortNoise::new((cfg.seed as u32) | 1, 16),
            noise_pcm: vec![0; frame],
            noise_fresh: false,
            overlay_sum: vec![0; frame],
            silence_pcm: vec![0; frame],
            recorder: RecorderTap::new(block, 4),
            events: VecDeque::with_capacity(16),
            next_tick: now + TICK,
            next_stats,
            tx_cursor: 0,
            tx_pending: false,
            rng: cfg.seed ^ 0x9E37_79B9_7F4A_7C15,
            start: now,
            cfg,
        })
    }

    fn random(&mut self) -> u64 {
        // splitmix64: enough for SSRCs and initial sequence numbers.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The room's mixing rate.
    pub fn sample_rate(&self) -> u32 {
        self.cfg.sample_rate
    }

    /// Number of participants.
    pub fn len(&self) -> usize {
        self.participants.len()
    }

    /// Whether the room is empty.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    /// Participant ids.
    pub fn participant_ids(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.participants.iter().map(|p| p.id)
    }

    /// The SSRC the room sends to a participant with.
    pub fn local_ssrc(&self, id: ParticipantId) -> Option<u32> {
        self.find(id).ok().map(|i| self.participants[i].tx.ssrc)
    }

    /// Where RTP to this participant goes now (latched or SDP address).
    pub fn remote_rtp(&self, id: ParticipantId) -> Option<SocketAddr> {
        self.find(id)
            .ok()
            .and_then(|i| self.participants[i].rtp_destination())
    }

    /// When `handle_tick` is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next_tick)
    }

    fn find(&self, id: ParticipantId) -> Result<usize> {
        self.index
            .get(&id)
            .copied()
            .ok_or(Error::UnknownParticipant(id.0))
    }

    fn ntp(&self, now: Instant) -> u64 {
        let d = now.saturating_duration_since(self.start);
        let frac = ((u128::from(d.subsec_nanos()) << 32) / 1_000_000_000) as u64;
        self.cfg
            .ntp_at_start
            .wrapping_add((d.as_secs() << 32) | frac)
    }

    fn shared_index(&mut self, stream: Stream, codec: Codec) -> Result<usize> {
        if let Some(i) = self
            .shared
            .iter()
            .position(|s| s.stream == stream && s.codec == codec)
        {
            return Ok(i);
        }
        let rate = self.cfg.sample_rate;
        let encoder = AudioEncoder::new(codec, rate)?;
        let enc_rate = encoder.rate();
        let codec_frame = enc_rate as usize / 50;
        self.shared.push(SharedEncoder {
            stream,
            codec,
            resampler: resampler_if(rate, enc_rate, self.frame)?,
            encoder,
            pcm: vec![0; codec_frame],
            payload: vec![0; MAX_OPUS_PACKET],
            len: 0,
            done: false,
            users: 0,
        });
        Ok(self.shared.len() - 1)
    }

    fn build_receive(&self, spec: &ParticipantSpec) -> Result<Receive> {
        let rate = self.cfg.sample_rate;
        let decoder = AudioDecoder::new(spec.codec, rate)?;
        let dec_rate = decoder.rate();
        let codec_frame = dec_rate as usize / 50;
        let slot_bytes = match spec.codec {
            Codec::Opus => MAX_OPUS_PACKET,
            // Up to 120 ms packets.
            _ => 960,
        };
        let ptime = Duration::from_millis(u64::from(spec.ptime.clamp(10, 120)));
        Ok(Receive {
            stats: ReceiveStats::new(spec.codec.rtp_clock_rate()),
            jitter: JitterBuffer::new(
                JitterConfig::new(spec.codec.rtp_clock_rate(), ptime, slot_bytes).typical_bytes(
                    // What the negotiated ptime gives (Opus varies: most
                    // 20 ms packets are well under 256 bytes).
                    spec.codec
                        .bytes_per_ms()
                        .map_or(256, |b| b * ptime.as_millis() as usize),
                ),
            ),
            resampler: resampler_if(dec_rate, rate, codec_frame)?,
            decoder,
            // A 20 ms frame plus the largest packet (120 ms).
            fifo: vec![0; codec_frame * 7],
            fifo_len: 0,
            codec_frame,
        })
    }

    fn build_send(&mut self, spec: &ParticipantSpec) -> Result<Send> {
        if spec.codec != Codec::Opus
            && (spec.ptime == 0 || !spec.ptime.is_multiple_of(10) || spec.ptime > 120)
        {
            return Err(Error::UnsupportedPtime {
                codec: spec.codec.name(),
                ptime: spec.ptime,
            });
        }
        let rate = self.cfg.sample_rate;
        let encoder = AudioEncoder::new(spec.codec, rate)?;
        let enc_rate = encoder.rate();
        let r = self.random();
        let packet_bytes = spec
            .codec
            .bytes_per_ms()
            .map_or(0, |b| b * spec.ptime as usize);
        Ok(Send {
            resampler: resampler_if(rate, enc_rate, self.frame)?,
            pcm: vec![0; enc_rate as usize / 50],
            encoder,
            ssrc: r as u32,
            seq: (r >> 32) as u16,
            ts: (r >> 48) as u32 * 7919,
            acc: vec![0; (packet_bytes + 160 * 2).max(MAX_OPUS_PACKET)],
            acc_len: 0,
            opus_ready: false,
            packet_bytes,
            marker: true,
            packets: 0,
            octets: 0,
            last_stream: None,
            dtmf: None,
            event_packet: None,
        })
    }

    /// Applies a command. Errors name unknown participants or unusable
    /// settings; the room is unchanged then.
    pub fn handle_command(&mut self, now: Instant, cmd: RoomCommand) -> Result<()> {
        match cmd {
            RoomCommand::AddParticipant { id, spec } => self.add(now, id, spec)?,
            RoomCommand::RemoveParticipant { id } => self.remove(id)?,
            RoomCommand::UpdateRemote {
                id,
                remote_rtp,
                remote_rtcp,
                rtcp_mux,
            } => {
                let i = self.find(id)?;
                let p = &mut self.participants[i];
                p.spec.remote_rtp = remote_rtp;
                p.spec.remote_rtcp = remote_rtcp;
                p.spec.rtcp_mux = rtcp_mux;
                p.latched = None;
                p.latched_ssrc = None;
                p.rtcp_from = None;
            }
            RoomCommand::UpdateCodec {
                id,
                codec,
                payload_type,
                telephone_event_pt,
                ptime,
            } => {
                let i = self.find(id)?;
                let mut spec = self.participants[i].spec.clone();
                spec.codec = codec;
                spec.payload_type = payload_type;
                spec.telephone_event_pt = telephone_event_pt;
                spec.ptime = ptime;
                let rx = self.build_receive(&spec)?;
                let mut tx = self.build_send(&spec)?;
                let old = self.participants[i].spec.codec;
                for stream in [Stream::Common, Stream::Silence, Stream::Noise] {
                    let k = self.shared_index(stream, codec)?;
                    self.shared[k].users += 1;
                }
                for s in &mut self.shared {
                    if s.codec == old {
                        s.users = s.users.saturating_sub(1);
                    }
                }
                self.shared.retain(|s| s.users > 0);
                let p = &mut self.participants[i];
                // Keep the stream identity: same SSRC, continuing sequence.
                tx.ssrc = p.tx.ssrc;
                tx.seq = p.tx.seq;
                tx.ts = p.tx.ts;
                p.rx = rx;
                p.tx = tx;
                p.spec = spec;
            }
            RoomCommand::SetMuted { id, muted } => {
                let i = self.find(id)?;
                self.participants[i].spec.muted = muted;
                self.refresh_flags(i);
            }
            RoomCommand::SetDeaf { id, deaf } => {
                let i = self.find(id)?;
                self.participants[i].spec.deaf = deaf;
                self.refresh_flags(i);
            }
            RoomCommand::SetInMix { id, in_mix } => {
                let i = self.find(id)?;
                self.participants[i].spec.in_mix = in_mix;
                self.refresh_flags(i);
            }
            RoomCommand::SetDirection { id, direction } => {
                let i = self.find(id)?;
                let p = &mut self.participants[i];
                if direction.sends() && !p.spec.direction.sends() {
                    p.tx.marker = true;
                }
                if direction.receives() && !p.spec.direction.receives() {
                    p.last_rx = Some(now);
                    p.timed_out = false;
                }
                p.spec.direction = direction;
                self.refresh_flags(i);
            }
            RoomCommand::Play { id, playback } => {
                let i = self.find(id)?;
                self.participants[i].queue.push_back(playback);
            }
            RoomCommand::PlayRoom { playback } => self.room_queue.push_back(playback),
            RoomCommand::StopPlayback { id } => {
                let (queue, who) = match id {
                    Some(id) => {
                        let i = self.find(id)?;
                        (&mut self.participants[i].queue, Some(id))
                    }
                    None => (&mut self.room_queue, None),
                };
                for pb in queue.drain(..) {
                    self.events.push_back(MediaEvent::PromptFinished {
                        participant: who,
                        id: pb.id,
                        completed: false,
                    });
                }
            }
            RoomCommand::MusicOnHold { id, music } => {
                let i = self.find(id)?;
                self.participants[i].moh = music.map(|m| Playback::looped(0, m));
            }
            RoomCommand::StartRecording { recording } => self.recorder.start(recording),
            RoomCommand::StopRecording => self.recorder.stop(),
            RoomCommand::SetMaxTalkers(k) => {
                self.cfg.max_talkers = k;
                self.mixer.set_max_talkers(k);
            }
            RoomCommand::SendDtmf {
                id,
                digit,
                duration,
            } => {
                let i = self.find(id)?;
                self.send_dtmf(i, digit, duration)?;
            }
            RoomCommand::RequestStats { id } => match id {
                Some(id) => {
                    let i = self.find(id)?;
                    self.emit_stats(i);
                }
                None => {
                    for i in 0..self.participants.len() {
                        self.emit_stats(i);
                    }
                }
            },
        }
        Ok(())
    }

    fn send_dtmf(&mut self, i: usize, digit: char, duration: Duration) -> Result<()> {
        let p = &mut self.participants[i];
        if p.spec.telephone_event_pt.is_some() {
            let units = (duration.as_millis() as u64 * u64::from(p.spec.codec.rtp_clock_rate())
                / 1000) as u32;
            p.tx.dtmf = Some(Rfc4733Sender::new(digit, units, p.tx.ts)?);
        } else {
            let ms = duration.as_millis().clamp(40, 2000) as u32;
            p.queue
                .push_back(Playback::tone(u64::MAX, Tone::dtmf(digit, ms)?));
        }
        Ok(())
    }

    fn refresh_flags(&mut self, i: usize) {
        let flags = self.participants[i].flags();
        self.mixer.set_flags(self.participants[i].slot, flags);
        if !flags.speak {
            let p = &mut self.participants[i];
            if let Some(TalkChange::Stopped) = p.talk.reset() {
                self.events
                    .push_back(MediaEvent::StoppedTalking { participant: p.id });
            }
        }
    }

    fn add(&mut self, now: Instant, id: ParticipantId, spec: ParticipantSpec) -> Result<()> {
        if self.index.contains_key(&id) {
            return Err(Error::DuplicateParticipant(id.0));
        }
        let rx = self.build_receive(&spec)?;
        let tx = self.build_send(&spec)?;
        let slot = self.mixer.add_slot();
        let p = Participant {
            id,
            slot,
            rx,
            tx,
            latched: None,
            latched_ssrc: None,
            events_in_seq: 0,
            last_event_seq: None,
            rtcp_from: None,
            last_rx: Some(now),
            timed_out: false,
            strangers: 0,
            malformed: 0,
            rfc4733: Rfc4733Receiver::new(),
            inband: ToneDetector::new(self.cfg.sample_rate),
            combiner: DtmfCombiner::default(),
            talk: TalkDetector::default(),
            queue: VecDeque::with_capacity(8),
            moh: None,
            out: vec![0; self.frame],
            overlay_limiter: Limiter::default(),
            overlay_active: false,
            // Spread first reports over the interval.
            next_rtcp: now
                + self.cfg.rtcp_interval / 2
                + Duration::from_millis(self.random() % 1000),
            rtcp_buf: [0; 256],
            rtcp_len: 0,
            lsr: None,
            rtt: None,
            remote_loss: None,
            remote_jitter: None,
            fraction_lost: 0.0,
            spec,
        };
        // Shared encoders this listener may use, created now rather than in
        // a tick.
        for stream in [Stream::Common, Stream::Silence, Stream::Noise] {
            let k = self.shared_index(stream, p.spec.codec)?;
            self.shared[k].users += 1;
        }
        self.mixer.set_flags(slot, p.flags());
        self.index.insert(id, self.participants.len());
        self.participants.push(p);
        // Room for a periodic stats burst (one event each) plus talk and
        // DTMF events, so a tick never grows the queue.
        let want = 1024 + 4 * self.participants.len();
        if self.events.capacity() < want {
            self.events.reserve(want - self.events.len());
        }
        Ok(())
    }

    fn remove(&mut self, id: ParticipantId) -> Result<()> {
        let i = self.find(id)?;
        let mut p = self.participants.swap_remove(i);
        self.index.remove(&id);
        if i < self.participants.len() {
            let moved = self.participants[i].id;
            self.index.insert(moved, i);
        }
        self.mixer.remove_slot(p.slot);
        if let Some(TalkChange::Stopped) = p.talk.reset() {
            self.events
                .push_back(MediaEvent::StoppedTalking { participant: id });
        }
        for s in &mut self.shared {
            if s.codec == p.spec.codec {
                s.users = s.users.saturating_sub(1);
            }
        }
        self.shared.retain(|s| s.users > 0);
        self.tx_cursor = 0;
        Ok(())
    }

    /// Handles a datagram that arrived on the participant's RTP socket
    /// (RTCP too when rtcp-mux is on). Never fails: bad packets are counted.
    pub fn handle_rtp(&mut self, now: Instant, id: ParticipantId, data: &[u8], from: SocketAddr) {
        let Ok(i) = self.find(id) else { return };
        if rtp::looks_like_rtcp(data) {
            if self.participants[i].spec.rtcp_mux {
                self.handle_rtcp(now, id, data, from);
            } else {
                self.participants[i].malformed += 1;
            }
            return;
        }
        let p = &mut self.participants[i];
        let Ok(pkt) = RtpPacket::parse(data) else {
            p.malformed += 1;
            return;
        };
        let h = pkt.header;
        let is_audio = h.payload_type == p.spec.payload_type;
        let is_event = Some(h.payload_type) == p.spec.telephone_event_pt;
        // Latching: the first packet with a negotiated payload type (and the
        // expected SSRC) decides where the peer is; afterwards only that
        // address, or the same SSRC from a new address (NAT rebinding).
        match p.latched {
            None => {
                if !(is_audio || is_event) || p.spec.expected_ssrc.is_some_and(|s| s != h.ssrc) {
                    p.strangers += 1;
                    return;
                }
                p.latched = Some(from);
                p.latched_ssrc = Some(h.ssrc);
            }
            Some(addr) if addr == from => {
                if !(is_audio || is_event) {
                    p.malformed += 1;
                    return;
                }
                if p.spec.expected_ssrc.is_some_and(|s| s != h.ssrc) {
                    p.strangers += 1;
                    return;
                }
            }
            Some(_) => {
                if (is_audio || is_event) && p.latched_ssrc == Some(h.ssrc) {
                    p.latched = Some(from);
                } else {
                    p.strangers += 1;
                    return;
                }
            }
        }
        p.last_rx = Some(now);
        p.timed_out = false;
        if !p.spec.direction.receives() {
            return;
        }
        if is_event {
            if p.last_event_seq != Some(h.sequence) {
                p.last_event_seq = Some(h.sequence);
                p.events_in_seq += 1;
                // Same sequence space as the audio: count it so RTCP loss
                // figures do not report key presses as lost packets.
                if p.rx.stats.ssrc() == Some(h.ssrc) {
                    p.rx.stats.update_sequence_only(h.ssrc, h.sequence);
                }
            }
            if let Ok(Some(digit)) = p.rfc4733.handle(h.timestamp, pkt.payload) {
                self.report_digit(now, i, digit, DtmfSource::Rfc4733);
            }
            return;
        }
        let verdict = p.rx.stats.update(now, h.ssrc, h.sequence, h.timestamp);
        let ext = match verdict {
            SeqVerdict::Probation => return,
            SeqVerdict::Accept(e) => e,
            SeqVerdict::NewSource(e) => {
                if p.latched_ssrc != Some(h.ssrc) {
                    p.latched_ssrc = Some(h.ssrc);
                    p.events_in_seq = 0;
                    p.rx.jitter.reset();
                    self.events.push_back(MediaEvent::SsrcChanged {
                        participant: id,
                        ssrc: h.ssrc,
                    });
                }
                e
            }
        };
        let level = p
            .spec
            .audio_level_ext_id
            .and_then(|x| pkt.audio_level(x))
            .map(|(_, l)| l);
        // Audio frames numbered without the event packets in between.
        let audio_seq = ext.saturating_sub(p.events_in_seq);
        p.rx.jitter
            .push_with_level(now, audio_seq, h.timestamp, pkt.payload, level);
    }

    /// Handles a datagram from the participant's RTCP socket.
    pub fn handle_rtcp(&mut self, now: Instant, id: ParticipantId, data: &[u8], from: SocketAddr) {
        let ntp_now = self.ntp(now);
        let Ok(i) = self.find(id) else { return };
        let p = &mut self.participants[i];
        if p.latched.is_some_and(|a| a.ip() != from.ip()) {
            p.strangers += 1;
            return;
        }
        let mut any = false;
        for pkt in rtcp::parse_compound(data) {
            let Ok(pkt) = pkt else {
                p.malformed += 1;
                break;
            };
            let reports = match pkt {
                RtcpPacket::SenderReport { info, reports, .. } => {
                    p.lsr = Some((rtcp::ntp_mid32(info.ntp), now));
                    Some(reports)
                }
                RtcpPacket::ReceiverReport { reports, .. } => Some(reports),
                _ => None,
            };
            any = true;
            for b in reports.into_iter().flatten() {
                if b.ssrc == p.tx.ssrc {
                    if let Some(rtt) = rtcp::round_trip(ntp_now, &b) {
                        p.rtt = Some(rtt);
                    }
                    p.remote_loss = Some(f32::from(b.fraction_lost) / 256.0);
                    p.remote_jitter = Some(
                        f64::from(b.jitter) * 1000.0 / f64::from(p.spec.codec.rtp_clock_rate()),
                    );
                }
            }
        }
        if any && !p.spec.rtcp_mux {
            p.rtcp_from = Some(from);
        }
    }

    /// A digit from SIP INFO (`application/dtmf-relay` or
    /// `application/dtmf`), parsed by the SIP layer.
    pub fn handle_dtmf_info(
        &mut self,
        now: Instant,
        id: ParticipantId,
        digit: char,
        _duration: Duration,
    ) -> Result<()> {
        crate::dtmf::digit_to_event(digit)?;
        let i = self.find(id)?;
        self.report_digit(now, i, digit.to_ascii_uppercase(), DtmfSource::SipInfo);
        Ok(())
    }

    fn report_digit(&mut self, now: Instant, i: usize, digit: char, source: DtmfSource) {
        let p = &mut self.participants[i];
        if !p.combiner.report(now, digit, source) {
            return;
        }
        let id = p.id;
        let relay = p.spec.relay_dtmf;
        self.events.push_back(MediaEvent::Dtmf {
            participant: id,
            digit,
            source,
        });
        if relay {
            for j in 0..self.participants.len() {
                if j != i {
                    // The digit was validated when it was received.
                    let _ = self.send_dtmf(j, digit, Duration::from_millis(100));
                }
            }
        }
    }

    /// Next event, if any.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// Next recording block for the writer, if any.
    pub fn poll_record_block(&mut self) -> Option<RecordBlock> {
        self.recorder.poll_block()
    }

    /// Returns a written block's buffer for reuse.
    pub fn recycle_record_block(&mut self, samples: Vec<i16>) {
        self.recorder.recycle(samples);
    }

    /// The recording in progress.
    pub fn recording(&self) -> Option<u64> {
        self.recorder.recording()
    }

    /// Runs one 20 ms tick: decode every input, mix, encode, packetise,
    /// detect DTMF and talking, schedule RTCP and timeouts. `now` is the
    /// tick's nominal time (see the module docs), one `TICK` after the
    /// previous one.
    pub fn handle_tick(&mut self, now: Instant) {
        self.next_tick += TICK;
        if self.next_tick < now {
            // We were late by more than a tick: skip ahead, don't burst.
            self.next_tick = now + TICK;
        }
        for s in &mut self.shared {
            s.done = false;
        }

        // 1. Inputs.
        for i in 0..self.participants.len() {
            let p = &mut self.participants[i];
            let slot = p.slot;
            if let Some(ms) = Self::pull_input(p, now, self.mixer.input_mut(slot)) {
                self.mixer.set_mean_square(slot, ms);
            }
        }

        // 2. Room-wide playback.
        let mut extra = false;
        if let Some(pb) = self.room_queue.front_mut() {
            self.room_extra.fill(0);
            extra = true;
            if !pb.fill(self.cfg.sample_rate, &mut self.room_extra) {
                let id = pb.id;
                self.room_queue.pop_front();
                self.events.push_back(MediaEvent::PromptFinished {
                    participant: None,
                    id,
                    completed: true,
                });
            }
        }

        // 3. Mix and record.
        self.mixer
            .mix(if extra { Some(&self.room_extra) } else { None });
        self.recorder.push_frame(self.mixer.common());
        // Comfort noise is made when a deaf participant needs it (`output`).
        self.noise_fresh = false;

        // 4. Per participant: detection, output, encoding.
        for i in 0..self.participants.len() {
            self.detect(now, i);
            self.output(i);
        }

        // 5. RTCP, timeouts, stats.
        for i in 0..self.participants.len() {
            let p = &mut self.participants[i];
            if p.spec.direction.receives()
                && !p.timed_out
                && p.last_rx
                    .is_some_and(|t| now.saturating_duration_since(t) >= self.cfg.rtp_timeout)
            {
                p.timed_out = true;
                self.events
                    .push_back(MediaEvent::RtpTimeout { participant: p.id });
            }
            if now >= p.next_rtcp {
                p.next_rtcp = now + self.cfg.rtcp_interval;
                self.build_rtcp(now, i);
            }
        }
        if let Some(t) = self.next_stats
            && now >= t
        {
            self.next_stats = self.cfg.stats_interval.map(|d| now + d);
            for i in 0..self.participants.len() {
                self.emit_stats(i);
            }
        }
        self.tx_pending = true;
    }

    /// Fills `out` with the participant's next 20 ms at the room rate.
    /// Returns the frame's mean square when decoding produced it for free.
    fn pull_input(p: &mut Participant, now: Instant, out: &mut [i16]) -> Option<i64> {
        let rx = &mut p.rx;
        if !p.spec.direction.receives() {
            out.fill(0);
            return Some(0);
        }
        let mut energy: Option<i64> = None;
        let clock = p.spec.codec.rtp_clock_rate() as usize;
        let rate = rx.decoder.rate() as usize;
        let need = rx.codec_frame;
        let cap = rx.fifo.len();
        // Fast path: nothing buffered, no resampling and a packet of
        // exactly one frame (the usual 20 ms case) decode straight into
        // the mixer's input, skipping the FIFO copy.
        let direct_ok = rx.fifo_len == 0 && rx.resampler.is_none();
        while rx.fifo_len < need {
            let room = cap - rx.fifo_len;
            let tail = &mut rx.fifo[rx.fifo_len..];
            let mut wrote_direct = false;
            let produced = match rx.jitter.pop(now) {
                Playout::Idle => {
                    if direct_ok {
                        out.fill(0);
                        return Some(0);
                    }
                    tail[..need - rx.fifo_len].fill(0);
                    need - rx.fifo_len
                }
                Playout::Frame { payload, level, .. } => {
                    let silent = match p.spec.codec {
                        Codec::Opus => {
                            payload.len() <= 2 || level.is_some_and(|l| l >= SILENT_LEVEL)
                        }
                        _ => false,
                    };
                    let n = rx.decoder.samples_in(payload).unwrap_or(0);
                    let dst: &mut [i16] = if direct_ok && n == need {
                        wrote_direct = true;
                        &mut *out
                    } else {
                        &mut tail[..room]
                    };
                    if silent {
                        rx.decoder.skip_silent();
                        let n = n.min(dst.len());
                        dst[..n].fill(0);
                        if wrote_direct {
                            energy = Some(0);
                        }
                        n
                    } else {
                        match rx.decoder.decode_with_energy(payload, dst) {
                            Ok((n, e)) => {
                                if wrote_direct && n == need {
                                    energy = e.map(|e| (e / need as u64) as i64);
                                }
                                n
                            }
                            Err(_) => 0,
                        }
                    }
                }
                Playout::Missing { duration, lost } => {
                    let n = duration as usize * rate / clock;
                    let dst: &mut [i16] = if direct_ok && n == need {
                        wrote_direct = true;
                        &mut *out
                    } else {
                        &mut tail[..room]
                    };
                    let n = n.min(dst.len());
                    if rx.decoder.lost_run() >= 3 {
                        // Past the concealment fade: plain silence.
                        dst[..n].fill(0);
                    } else {
                        let next = if lost { rx.jitter.next_payload() } else { None };
                        let got = rx.decoder.conceal(n, next, &mut dst[..n]).unwrap_or(0);
                        dst[got..n].fill(0);
                    }
                    n
                }
            };
            if wrote_direct {
                if produced < need {
                    out[produced..].fill(0);
                    energy = None;
                }
                return energy;
            }
            if produced == 0 {
                // Undecodable packet: fill so the loop ends.
                rx.fifo[rx.fifo_len..need].fill(0);
                rx.fifo_len = need;
                break;
            }
            rx.fifo_len += produced;
        }
        let frame = &rx.fifo[..need];
        match &mut rx.resampler {
            Some(r) => {
                if r.process(frame, out).is_err() {
                    out.fill(0);
                }
            }
            None => out.copy_from_slice(frame),
        }
        rx.fifo.copy_within(need..rx.fifo_len, 0);
        rx.fifo_len -= need;
        None
    }

    fn detect(&mut self, now: Instant, i: usize) {
        let p = &mut self.participants[i];
        let ms = self.mixer.mean_square(p.slot);
        if p.spec.direction.receives() && self.cfg.inband_dtmf {
            let input = self.mixer.input(p.slot);
            if let Some(d) = p.inband.process_frame(input, ms) {
                self.report_digit(now, i, d, DtmfSource::InBand);
            }
        }
        let p = &mut self.participants[i];
        // Tells the jitter buffer whether a frame could go unnoticed now,
        // so a due shrink drops one in a pause rather than mid-word.
        p.rx.jitter
            .set_quiet(!p.flags().speak || ms < TalkDetector::STOP);
        if p.flags().speak {
            match p.talk.update(ms) {
                Some(TalkChange::Started { .. }) => self
                    .events
                    .push_back(MediaEvent::Talking { participant: p.id }),
                Some(TalkChange::Stopped) => self
                    .events
                    .push_back(MediaEvent::StoppedTalking { participant: p.id }),
                None => {}
            }
        }
    }

    fn output(&mut self, i: usize) {
        let rate = self.cfg.sample_rate;
        let p = &mut self.participants[i];
        let kind = self.mixer.output_kind(p.slot);
        let base_stream = match kind {
            MixOutput::Common => Stream::Common,
            MixOutput::Private => Stream::Own,
            MixOutput::Silent if p.spec.in_mix && p.spec.deaf => Stream::Noise,
            MixOutput::Silent => Stream::Silence,
        };
        if base_stream == Stream::Noise && !self.noise_fresh {
            self.noise.fill(&mut self.noise_pcm);
            self.noise_fresh = true;
        }
        let own_audio = !p.queue.is_empty() || p.moh.is_some();
        if !p.spec.direction.sends() {
            // Keep playback moving so queued prompts still finish on hold.
            if own_audio {
                Self::fill_own(p, rate, &mut self.events, None, &mut self.overlay_sum);
            }
            return;
        }
        let stream = if own_audio { Stream::Own } else { base_stream };
        if stream == Stream::Own {
            let base: Option<&[i16]> = match base_stream {
                // Nothing to lay the prompt over.
                Stream::Common if self.mixer.common_silent() => None,
                Stream::Common => Some(self.mixer.common()),
                Stream::Own => Some(self.mixer.output(p.slot)),
                Stream::Noise => Some(&self.noise_pcm),
                Stream::Silence => None,
            };
            if own_audio {
                Self::fill_own(p, rate, &mut self.events, base, &mut self.overlay_sum);
            } else if let Some(b) = base {
                p.out.copy_from_slice(b);
            }
        }
        // Encode (once per shared stream and codec).
        let codec = p.spec.codec;
        let (payload, len): (&[u8], usize) = if stream == Stream::Own {
            if let Some(prev) = p.tx.last_stream
                && prev != Stream::Own
                && let Some(s) = self
                    .shared
                    .iter()
                    .find(|s| s.stream == prev && s.codec == codec)
            {
                p.tx.encoder.continue_from(&s.encoder);
            }
            let tx = &mut p.tx;
            let pcm: &[i16] = match &mut tx.resampler {
                Some(r) => {
                    if r.process(&p.out, &mut tx.pcm).is_err() {
                        tx.pcm.fill(0);
                    }
                    &tx.pcm
                }
                None => &p.out,
            };
            let start = if codec == Codec::Opus { 0 } else { tx.acc_len };
            let len = tx.encoder.encode(pcm, &mut tx.acc[start..]).unwrap_or(0);
            (&[], len)
        } else {
            let Some(s) = self
                .shared
                .iter_mut()
                .find(|s| s.stream == stream && s.codec == codec)
            else {
                return;
            };
            if !s.done {
                s.done = true;
                let src: &[i16] = match stream {
                    Stream::Common => self.mixer.common(),
                    Stream::Noise => &self.noise_pcm,
                    _ => &self.silence_pcm,
                };
                let pcm: &[i16] = match &mut s.resampler {
                    Some(r) => {
                        if r.process(src, &mut s.pcm).is_err() {
                            s.pcm.fill(0);
                        }
                        &s.pcm
                    }
                    None => src,
                };
                s.len = s.encoder.encode(pcm, &mut s.payload).unwrap_or(0);
            }
            (&s.payload[..s.len], s.len)
        };
        let tx = &mut p.tx;
        tx.last_stream = Some(stream);
        if codec == Codec::Opus {
            if !payload.is_empty() {
                tx.acc[..len].copy_from_slice(payload);
            }
            tx.acc_len = len;
            tx.opus_ready = len > 0;
        } else {
            if !payload.is_empty() {
                let end = (tx.acc_len + len).min(tx.acc.len());
                tx.acc[tx.acc_len..end].copy_from_slice(&payload[..end - tx.acc_len]);
            }
            tx.acc_len = (tx.acc_len + len).min(tx.acc.len());
        }
        // DTMF events replace audio packets while a key is sent.
        if let Some(d) = &mut tx.dtmf {
            let step = codec.rtp_clock_rate() / 50;
            tx.event_packet = d.next_packet(step);
            if d.is_done() {
                tx.dtmf = None;
            }
        }
    }

    fn fill_own(
        p: &mut Participant,
        rate: u32,
        events: &mut VecDeque<MediaEvent>,
        base: Option<&[i16]>,
        sum: &mut [i32],
    ) {
        // Music on hold replaces the mix; prompts play over it.
        let base = if p.moh.is_some() { None } else { base };
        let overlay = !p.queue.is_empty() && base.is_some();
        p.out.fill(0);
        if let Some(pb) = p.queue.front_mut() {
            if !pb.fill(rate, &mut p.out) {
                let id = pb.id;
                p.queue.pop_front();
                if id != u64::MAX {
                    events.push_back(MediaEvent::PromptFinished {
                        participant: Some(p.id),
                        id,
                        completed: true,
                    });
                }
            }
            if let Some(b) = base {
                if !p.overlay_active {
                    p.overlay_limiter = Limiter::default();
                }
                for ((s, &x), &m) in sum.iter_mut().zip(&p.out).zip(b) {
                    *s = i32::from(x) + i32::from(m);
                }
                p.overlay_limiter.apply(sum, &[], &mut p.out);
            }
        } else if let Some(m) = &mut p.moh {
            m.fill(rate, &mut p.out);
        } else if let Some(b) = base {
            p.out.copy_from_slice(b);
        }
        p.overlay_active = overlay;
    }

    fn build_rtcp(&mut self, now: Instant, i: usize) {
        let ntp = self.ntp(now);
        let cname = self.cfg.cname.as_bytes();
        let p = &mut self.participants[i];
        let mut blocks = [ReportBlock::default(); 1];
        let mut nb = 0;
        if let Some(ssrc) = p.rx.stats.ssrc() {
            let fraction = p.rx.stats.take_fraction_lost();
            p.fraction_lost = f32::from(fraction) / 256.0;
            let (last_sr, dlsr) = match p.lsr {
                Some((lsr, at)) => (lsr, rtcp::to_q16(now.saturating_duration_since(at))),
                None => (0, 0),
            };
            blocks[0] = ReportBlock {
                ssrc,
                fraction_lost: fraction,
                cumulative_lost: p.rx.stats.cumulative_lost().clamp(-0x80_0000, 0x7F_FFFF) as i32,
                extended_highest_seq: p.rx.stats.extended_max() as u32,
                jitter: p.rx.stats.jitter(),
                last_sr,
                delay_since_last_sr: dlsr,
            };
            nb = 1;
        }
        let sender = (p.tx.packets > 0).then_some(SenderInfo {
            ntp,
            rtp_timestamp: p.tx.ts,
            packet_count: p.tx.packets as u32,
            octet_count: p.tx.octets as u32,
        });
        let Ok(n) = rtcp::write_report(&mut p.rtcp_buf, p.tx.ssrc, sender.as_ref(), &blocks[..nb])
        else {
            return;
        };
        let Ok(m) = rtcp::write_sdes_cname(
            &mut p.rtcp_buf[n..],
            p.tx.ssrc,
            &cname[..cname.len().min(200)],
        ) else {
            return;
        };
        p.rtcp_len = n + m;
    }

    fn emit_stats(&mut self, i: usize) {
        let p = &self.participants[i];
        let stats = Self::stats_of(p);
        self.events.push_back(MediaEvent::Stats {
            participant: p.id,
            stats,
        });
    }

    fn stats_of(p: &Participant) -> ParticipantStats {
        ParticipantStats {
            packets_received: p.rx.stats.received(),
            packets_lost: p.rx.stats.cumulative_lost(),
            fraction_lost: p.fraction_lost,
            jitter_ms: p.rx.stats.jitter_ms(),
            rtt: p.rtt,
            remote_fraction_lost: p.remote_loss,
            remote_jitter_ms: p.remote_jitter,
            packets_sent: p.tx.packets,
            strangers_dropped: p.strangers,
            malformed_dropped: p.malformed,
            jitter_buffer: p.rx.jitter.stats(),
            jitter_target: p.rx.jitter.target_delay(),
        }
    }

    /// Current figures for one participant (without an event).
    pub fn stats(&self, id: ParticipantId) -> Result<ParticipantStats> {
        Ok(Self::stats_of(&self.participants[self.find(id)?]))
    }

    /// Writes the next datagram to send into `buf` (at least
    /// [`MAX_DATAGRAM`] bytes). Call until `None` after every `handle_*`.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        if !self.tx_pending {
            return None;
        }
        while self.tx_cursor < self.participants.len() {
            let p = &mut self.participants[self.tx_cursor];
            if p.rtcp_len > 0 {
                let n = std::mem::take(&mut p.rtcp_len);
                if let Some(to) = p.rtcp_destination()
                    && buf.len() >= n
                {
                    buf[..n].copy_from_slice(&p.rtcp_buf[..n]);
                    return Some(Transmit {
                        participant: p.id,
                        kind: PacketKind::Rtcp,
                        to,
                        len: n,
                    });
                }
                continue;
            }
            let Some(to) = p.rtp_destination() else {
                p.tx.acc_len = 0;
                p.tx.opus_ready = false;
                p.tx.event_packet = None;
                self.tx_cursor += 1;
                continue;
            };
            let tx = &mut p.tx;
            if let Some(ev) = tx.event_packet.take() {
                let Some(pt) = p.spec.telephone_event_pt else {
                    continue;
                };
                // The audio for this interval is replaced by the event.
                let step = if tx.packet_bytes > 0 {
                    tx.packet_bytes
                } else {
                    0
                };
                if tx.acc_len >= step && step > 0 {
                    tx.acc.copy_within(step..tx.acc_len, 0);
                    tx.acc_len -= step;
                    tx.ts = tx.ts.wrapping_add(step as u32);
                } else if tx.opus_ready {
                    tx.opus_ready = false;
                    tx.ts = tx.ts.wrapping_add(960);
                }
                let h = RtpHeader {
                    marker: ev.marker,
                    payload_type: pt,
                    sequence: tx.seq,
                    timestamp: ev.timestamp,
                    ssrc: tx.ssrc,
                    ..Default::default()
                };
                tx.seq = tx.seq.wrapping_add(1);
                if let Ok(len) = rtp::write_rtp(buf, &h, None, &ev.payload) {
                    tx.packets += 1;
                    tx.octets += 4;
                    return Some(Transmit {
                        participant: p.id,
                        kind: PacketKind::Rtp,
                        to,
                        len,
                    });
                }
                continue;
            }
            let (payload_len, advance) = if p.spec.codec == Codec::Opus {
                if !tx.opus_ready {
                    self.tx_cursor += 1;
                    continue;
                }
                tx.opus_ready = false;
                // Opus timestamps run at 48 kHz whatever the coding rate.
                (tx.acc_len, 960)
            } else {
                if tx.packet_bytes == 0 || tx.acc_len < tx.packet_bytes {
                    self.tx_cursor += 1;
                    continue;
                }
                (tx.packet_bytes, tx.packet_bytes as u32)
            };
            let h = RtpHeader {
                marker: std::mem::take(&mut tx.marker),
                payload_type: p.spec.payload_type,
                sequence: tx.seq,
                timestamp: tx.ts,
                ssrc: tx.ssrc,
                ..Default::default()
            };
            let written = rtp::write_rtp(buf, &h, None, &tx.acc[..payload_len]);
            tx.seq = tx.seq.wrapping_add(1);
            tx.ts = tx.ts.wrapping_add(advance);
            if p.spec.codec != Codec::Opus {
                tx.acc.copy_within(payload_len..tx.acc_len, 0);
            }
            tx.acc_len -= payload_len;
            if let Ok(len) = written {
                tx.packets += 1;
                tx.octets += payload_len as u64;
                return Some(Transmit {
                    participant: p.id,
                    kind: PacketKind::Rtp,
                    to,
                    len,
                });
            }
        }
        self.tx_cursor = 0;
        self.tx_pending = false;
        None
    }
}
