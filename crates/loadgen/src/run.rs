//! The runtime: sockets, threads and clocks around the sans-IO pieces, and
//! the phases of a run (join, settle, measure, leave).
//!
//! Meet first: [`Settings`] (what to run: [`Mode`], target, participants,
//! rooms, codec, talk fraction, window), [`run`] (does it and returns a
//! [`Report`]) and the media worker (private): each worker thread owns the
//! RTP sockets of its participants (one socket per participant, as a real
//! phone has, so the server latches each one separately), waits on epoll,
//! reads with `recvmmsg` and kernel timestamps, and sends each participant's
//! packet in one of twenty 1 ms slots of the 20 ms cycle, so the server
//! sees a steady stream rather than one burst per tick. The main thread
//! speaks SIP for every call through [`crate::uac::Uac`] on one socket with
//! batched `sendmmsg`/`recvmmsg`, and conducts the phases.
//!
//! Not here: what the packets contain ([`crate::participant`]) and what the
//! figures mean ([`crate::report`]).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use palaver_media::codec::Codec;
use palaver_sdp::{
    CodecConfig, Direction, LocalCapabilities, Origin, Session, TelephoneEventConfig,
    accept_answer, offer,
};

use crate::error::{Error, Result};
use crate::marker::Nanos;
use crate::participant::{
    MarkerBoard, MediaSpec, ParticipantConfig, ParticipantMedia, ParticipantReport, Recording,
    Script, Seat, Voice, silence_payload,
};
use crate::probe::ServerProbe;
use crate::quality::{Continuity, References, align, read_wav, write_wav};
use crate::report::{
    CallFigures, CpuFigures, MachineFigures, MediaFigures, QualityFigures, Report,
};
use crate::signal::{Rng64, SpeechLike, TalkPattern, Tone};
use crate::stats::Distribution;
use crate::sys::{self, CpuTime, Destination, Epoll, MachineTime, RecvBatch, SendBatch, TimerFd};
use crate::uac::{CallEvent, CallHandle, Failure, Uac, UacConfig};

const MS: Nanos = 1_000_000;
/// Time between two server snapshots inside the window.
const PROBE_INTERVAL: Duration = Duration::from_secs(30);

/// What kind of run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Participants join rooms, talk, are measured, leave.
    Conference,
    /// Like `Conference` into one room, reported for its join rate.
    JoinRate,
    /// Short calls to a number that answers, plays a tone and hangs up.
    CallRate,
    /// Speech samples through one room to one recording listener.
    Quality,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Conference => "conference",
            Mode::JoinRate => "join-rate",
            Mode::CallRate => "call-rate",
            Mode::Quality => "quality",
        }
    }
}

/// What talkers send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceKind {
    Speech,
    Tone,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    /// The SIP server (UDP).
    pub server: SocketAddr,
    /// Instead of SIP: RTP straight to these reflector ports, one per
    /// participant.
    pub reflector: Option<Vec<SocketAddr>>,
    /// Our address (loopback).
    pub local_ip: Ipv4Addr,
    /// Numbers to call: rooms (participant `i` calls `numbers[i % len]`)
    /// or the call-rate test number.
    pub numbers: Vec<String>,
    /// Participants (conference, join-rate) or calls (call-rate).
    pub participants: usize,
    /// New calls per second.
    pub rate: f64,
    pub codec: Codec,
    pub talk_fraction: f64,
    pub voice: VoiceKind,
    /// Wait after the last join before measuring.
    pub settle: Duration,
    /// The measured window.
    pub window: Duration,
    /// One marker per room every this long (zero: none).
    pub marker_interval: Duration,
    pub user: String,
    pub password: Option<String>,
    /// Keys sent after joining (`#` is appended).
    pub pin: Option<String>,
    /// Media worker threads.
    pub threads: usize,
    pub setup_timeout: Duration,
    /// Call-rate: hang up ourselves if the server has not after this.
    pub hold_limit: Duration,
    /// Quality: speech WAVs (8 kHz mono 16-bit), one per talker.
    pub speech: Vec<PathBuf>,
    /// Quality: where the WAVs go.
    pub record_dir: PathBuf,
    /// Socket buffer size for RTP sockets (0: system default).
    pub rtp_buffer: usize,
    pub seed: u64,
    /// The server's pid and `/metrics` address, to report its CPU, memory
    /// and mixer timings over the window.
    pub probe: Option<(u32, Option<SocketAddr>)>,
    /// Keep every participant's report in the output.
    pub per_participant: bool,
}

impl Settings {
    /// Defaults for a conference run against `server`.
    pub fn new(server: SocketAddr) -> Self {
        Self {
            mode: Mode::Conference,
            server,
            reflector: None,
            local_ip: Ipv4Addr::LOCALHOST,
            numbers: vec!["800".into()],
            participants: 10,
            rate: 100.0,
            codec: Codec::Pcmu,
            talk_fraction: 0.05,
            voice: VoiceKind::Speech,
            settle: Duration::from_secs(5),
            window: Duration::from_secs(10),
            marker_interval: Duration::from_secs(2),
            user: "loadgen".into(),
            password: None,
            pin: None,
            threads: 2,
            setup_timeout: Duration::from_secs(32),
            hold_limit: Duration::from_secs(10),
            speech: Vec::new(),
            record_dir: PathBuf::from("."),
            rtp_buffer: 0,
            seed: 1,
            probe: None,
            per_participant: false,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |s: &str| Err(Error::Settings(s.into()));
        if self.participants == 0 {
            return bad("at least one participant or call");
        }
        if self.rate <= 0.0 || !self.rate.is_finite() {
            return bad("the rate must be positive");
        }
        if self.numbers.is_empty() && self.reflector.is_none() {
            return bad("no number to call");
        }
        if !(0.0..=1.0).contains(&self.talk_fraction) {
            return bad("the talk fraction is between 0 and 1");
        }
        if let Some(ports) = &self.reflector
            && ports.len() < self.participants
        {
            return bad("fewer reflector ports than participants");
        }
        if self.mode == Mode::Quality && self.speech.is_empty() {
            return bad("the quality mode needs at least one --speech file");
        }
        if !self.server.ip().is_loopback() {
            return bad("the load generator only talks to loopback addresses");
        }
        if let Some(ports) = &self.reflector
            && ports.iter().any(|p| !p.ip().is_loopback())
        {
            return bad("reflector ports must be on loopback");
        }
        Ok(())
    }

    fn local(&self, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.local_ip), port)
    }
}

/// Runs `settings` to the end and reports.
pub fn run(settings: &Settings) -> Result<Report> {
    settings.validate()?;
    // Each participant holds a socket; the default soft limit (often 1024)
    // is too low for a thousand of them.
    let _ = sys::raise_open_files_limit();
    match settings.mode {
        Mode::CallRate => call_rate(settings),
        _ => conference(settings),
    }
}

// ---------------------------------------------------------------------
// Media workers

enum WorkerCommand {
    /// A participant, its socket, and the send slot to use (None: the
    /// next one round the 20, spreading the sends over the frame).
    Add(Box<ParticipantMedia>, UdpSocket, Option<usize>),
    Remove(usize),
    StartWindow(Nanos),
    EndWindow,
    Shutdown,
}

struct WorkerOutput {
    reports: Vec<ParticipantReport>,
    lateness_max: Nanos,
    late_slots: u64,
}

struct Entry {
    media: Box<ParticipantMedia>,
    _socket: UdpSocket,
    fd: RawFd,
    dest: Destination,
    /// Index into the send slots.
    slot: usize,
}

const TIMER_TOKEN: u64 = u64::MAX;
const SLOTS: u64 = 20;
const SLOT: Nanos = MS;

struct Worker {
    handle: JoinHandle<Result<WorkerOutput>>,
    tx: Sender<WorkerCommand>,
}

fn spawn_worker(index: usize, board: Arc<MarkerBoard>) -> Result<Worker> {
    let (tx, rx) = channel();
    let handle = std::thread::Builder::new()
        .name(format!("loadgen-media-{index}"))
        .spawn(move || worker_main(&rx, &board))
        .map_err(Error::io("starting a media worker"))?;
    Ok(Worker { handle, tx })
}

fn worker_main(rx: &Receiver<WorkerCommand>, board: &MarkerBoard) -> Result<WorkerOutput> {
    let epoll = Epoll::new().map_err(Error::io("epoll"))?;
    let timer = TimerFd::new().map_err(Error::io("timerfd"))?;
    epoll
        .add(timer.raw(), TIMER_TOKEN)
        .map_err(Error::io("epoll add"))?;
    let mut entries: Vec<Option<Entry>> = Vec::new();
    let mut slots: Vec<Vec<usize>> = vec![Vec::new(); SLOTS as usize];
    let mut finished: Vec<ParticipantReport> = Vec::new();
    let base = sys::now() / MS * MS + MS;
    let slot_time = |n: u64| base + n * SLOT;
    let mut next_slot = 0u64;
    timer
        .set_at(slot_time(next_slot))
        .map_err(Error::io("timerfd"))?;
    let mut events = sys::events(256);
    let mut batch = RecvBatch::new(8);
    let mut buf = [0u8; 1_500];
    let mut measuring = false;
    let mut lateness_max = 0;
    let mut late_slots = 0;

    loop {
        let n = epoll
            .wait(&mut events, 50)
            .map_err(Error::io("epoll wait"))?;
        let mut tick = false;
        for ev in &events[..n] {
            let token = ev.u64;
            if token == TIMER_TOKEN {
                timer.drain();
                tick = true;
                continue;
            }
            let Some(Some(e)) = entries.get_mut(token as usize) else {
                continue;
            };
            // One batch per readiness: level-triggered epoll reports the
            // socket again if more is queued.
            if let Ok(k) = batch.recv(e.fd) {
                for i in 0..k {
                    if let Some(p) = batch.get(i) {
                        let at = p.at.unwrap_or_else(sys::now);
                        e.media.handle_packet(at, p.data, board);
                    }
                }
            }
        }
        let now = sys::now();
        if !tick && now < slot_time(next_slot) {
            continue;
        }
        loop {
            match rx.try_recv() {
                Ok(WorkerCommand::Add(media, socket, slot)) => {
                    let Some(dest) = Destination::new(media.remote()) else {
                        continue;
                    };
                    let idx = entries.len();
                    let fd = socket.as_raw_fd();
                    epoll.add(fd, idx as u64).map_err(Error::io("epoll add"))?;
                    let mut media = media;
                    if measuring {
                        media.start_window(now);
                    }
                    let slot = slot.unwrap_or(idx) % SLOTS as usize;
                    entries.push(Some(Entry {
                        media,
                        _socket: socket,
                        fd,
                        dest,
                        slot,
                    }));
                    slots[slot].push(idx);
                }
                Ok(WorkerCommand::Remove(id)) => {
                    if let Some(idx) = entries
                        .iter()
                        .position(|e| e.as_ref().is_some_and(|e| e.media.id() == id))
                        && let Some(mut e) = entries[idx].take()
                    {
                        let _ = epoll.remove(e.fd);
                        slots[e.slot].retain(|&i| i != idx);
                        e.media.end_window(sys::now());
                        finished.push(e.media.report());
                    }
                }
                Ok(WorkerCommand::StartWindow(at)) => {
                    measuring = true;
                    for e in entries.iter_mut().flatten() {
                        e.media.start_window(at);
                    }
                }
                Ok(WorkerCommand::EndWindow) => {
                    measuring = false;
                    let t = sys::now();
                    for e in entries.iter_mut().flatten() {
                        e.media.end_window(t);
                    }
                }
                Ok(WorkerCommand::Shutdown) | Err(TryRecvError::Disconnected) => {
                    let t = sys::now();
                    for e in entries.iter_mut().flatten() {
                        e.media.end_window(t);
                        finished.push(e.media.report());
                    }
                    return Ok(WorkerOutput {
                        reports: finished,
                        lateness_max,
                        late_slots,
                    });
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        let mut processed = 0;
        while slot_time(next_slot) <= now {
            let late = now - slot_time(next_slot);
            if measuring {
                lateness_max = lateness_max.max(late);
                late_slots += u64::from(late > 5 * MS);
            }
            for &idx in &slots[(next_slot % SLOTS) as usize] {
                if let Some(Some(e)) = entries.get_mut(idx) {
                    let t = sys::now();
                    let len = e.media.next_packet(t, board, &mut buf);
                    if len > 0 && sys::send_to(e.fd, &buf[..len], &e.dest).is_err() {
                        e.media.send_failed();
                    }
                }
            }
            next_slot += 1;
            processed += 1;
            if processed == 2 * SLOTS {
                // Far behind (the machine stalled us): skip ahead rather
                // than send a burst of stale packets.
                next_slot = (now - base) / SLOT + 1;
                break;
            }
        }
        timer
            .set_at(slot_time(next_slot))
            .map_err(Error::io("timerfd"))?;
    }
}

// ---------------------------------------------------------------------
// Signalling

const SIP_TOKEN: u64 = 1;
const SINK_TOKEN: u64 = 2;

struct Signalling {
    uac: Uac,
    socket: UdpSocket,
    server: Destination,
    send: SendBatch,
    recv: RecvBatch,
    epoll: Epoll,
    events: Vec<libc::epoll_event>,
    sink: Option<UdpSocket>,
    sink_packets: u64,
}

impl Signalling {
    fn new(settings: &Settings, sink: Option<UdpSocket>) -> Result<Self> {
        let socket = sys::udp_socket(settings.local(0), 8 << 20)
            .map_err(Error::io("binding the SIP socket"))?;
        let local = socket
            .local_addr()
            .map_err(Error::io("SIP socket address"))?;
        let server = Destination::new(settings.server).ok_or(Error::Address(settings.server))?;
        let mut cfg = UacConfig::new(local, settings.server);
        cfg.user = settings.user.clone();
        cfg.password = settings.password.clone();
        cfg.setup_timeout = settings.setup_timeout;
        let epoll = Epoll::new().map_err(Error::io("epoll"))?;
        epoll
            .add(socket.as_raw_fd(), SIP_TOKEN)
            .map_err(Error::io("epoll add"))?;
        if let Some(s) = &sink {
            epoll
                .add(s.as_raw_fd(), SINK_TOKEN)
                .map_err(Error::io("epoll add"))?;
        }
        Ok(Self {
            uac: Uac::new(cfg),
            socket,
            server,
            send: SendBatch::new(64),
            recv: RecvBatch::new(64),
            epoll,
            events: sys::events(8),
            sink,
            sink_packets: 0,
        })
    }

    fn flush(&mut self) -> Result<()> {
        let fd = self.socket.as_raw_fd();
        while let Some(d) = self.uac.poll_transmit() {
            if self.send.is_full() {
                self.send.flush(fd).map_err(Error::io("sending SIP"))?;
            }
            self.send.push(&d, &self.server);
        }
        self.send.flush(fd).map_err(Error::io("sending SIP"))?;
        Ok(())
    }

    /// Waits for input until `until` (at most 5 ms) and feeds it in.
    fn pump(&mut self, until: Instant) -> Result<()> {
        let now = Instant::now();
        let wait = until
            .saturating_duration_since(now)
            .min(Duration::from_millis(5));
        let ms = wait.as_micros().div_ceil(1000) as i32;
        let n = self
            .epoll
            .wait(&mut self.events, ms)
            .map_err(Error::io("epoll wait"))?;
        for i in 0..n {
            match self.events[i].u64 {
                SIP_TOKEN => loop {
                    let k = self
                        .recv
                        .recv(self.socket.as_raw_fd())
                        .map_err(Error::io("receiving SIP"))?;
                    let now = Instant::now();
                    for j in 0..k {
                        if let Some(p) = self.recv.get(j) {
                            self.uac.handle_datagram(now, p.data);
                        }
                    }
                    if k < 64 {
                        break;
                    }
                },
                SINK_TOKEN => {
                    if let Some(s) = &self.sink {
                        let fd = s.as_raw_fd();
                        loop {
                            let k = self.recv.recv(fd).map_err(Error::io("receiving RTP"))?;
                            self.sink_packets += k as u64;
                            if k < 64 {
                                break;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn sdp_codec(codec: Codec) -> palaver_sdp::Codec {
    match codec {
        Codec::Pcmu => palaver_sdp::Codec::Pcmu,
        Codec::Pcma => palaver_sdp::Codec::Pcma,
        Codec::G722 => palaver_sdp::Codec::G722,
        Codec::Opus => palaver_sdp::Codec::Opus,
    }
}

fn media_codec(codec: palaver_sdp::Codec) -> Codec {
    match codec {
        palaver_sdp::Codec::Pcmu => Codec::Pcmu,
        palaver_sdp::Codec::Pcma => Codec::Pcma,
        palaver_sdp::Codec::G722 => Codec::G722,
        palaver_sdp::Codec::Opus => Codec::Opus,
    }
}

/// Our offer: one codec, RFC 4733 at its clock, rtcp-mux (so the server's
/// RTCP lands on the RTP socket, where it is recognised and skipped).
fn build_offer(codec: Codec, rtp: SocketAddr, session_id: u64) -> Session {
    let caps = LocalCapabilities {
        codecs: vec![CodecConfig::standard(sdp_codec(codec))],
        telephone_events: vec![TelephoneEventConfig {
            clock_rate: codec.rtp_clock_rate(),
            payload_type: if codec == Codec::Opus { 110 } else { 101 },
        }],
        audio_level: false,
        ..LocalCapabilities::default()
    };
    let origin = Origin::new(session_id, 1, rtp.ip());
    offer(&caps, &origin, rtp, Direction::SendRecv)
}

fn negotiate(our_offer: &Session, answer: &[u8]) -> Option<MediaSpec> {
    let answer = Session::parse(answer).ok()?;
    let n = accept_answer(our_offer, &answer).ok()?;
    Some(MediaSpec {
        codec: media_codec(n.codec.codec),
        payload_type: n.codec.payload_type,
        receive_payload_type: n.codec.receive_payload_type,
        telephone_event: n.telephone_event.map(|t| t.payload_type),
        remote: n.remote_rtp,
    })
}

fn failure_key(f: &Failure) -> String {
    match f {
        Failure::Status(s) => s.to_string(),
        Failure::Timeout => "timeout".into(),
        Failure::Auth(s) => format!("auth {s}"),
    }
}

fn machine_figures(
    start: Option<MachineTime>,
    wall: Duration,
    loadgen: &CpuFigures,
    server_percent: f64,
) -> MachineFigures {
    let (Some(start), Ok(end)) = (start, MachineTime::read()) else {
        return MachineFigures::default();
    };
    let wall_s = wall.as_secs_f64().max(1e-9);
    let busy_percent = 100.0 * start.busy_seconds_until(&end) / wall_s;
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0);
    MachineFigures {
        busy_percent,
        others_percent: (busy_percent - loadgen.percent_of_one_core - server_percent).max(0.0),
        load_average,
    }
}

fn cpu_figures(start: CpuTime, end: CpuTime, wall: Duration) -> CpuFigures {
    let wall_s = wall.as_secs_f64();
    let user_s = end.user_s - start.user_s;
    let system_s = end.system_s - start.system_s;
    CpuFigures {
        user_s,
        system_s,
        wall_s,
        percent_of_one_core: if wall_s > 0.0 {
            100.0 * (user_s + system_s) / wall_s
        } else {
            0.0
        },
    }
}

// ---------------------------------------------------------------------
// Conference, join-rate, quality and reflector runs

struct Pending {
    participant: usize,
    socket: UdpSocket,
    offer: Session,
}

struct Conference<'a> {
    settings: &'a Settings,
    board: Arc<MarkerBoard>,
    workers: Vec<Worker>,
    silence: Arc<[u8]>,
    speech: Vec<Arc<Vec<i16>>>,
    sig: Option<Signalling>,
    pending: HashMap<CallHandle, Pending>,
    live: HashMap<CallHandle, usize>,
    calls: CallFigures,
    setup_ms: Vec<f64>,
    first_invite: Option<Instant>,
    last_invite: Option<Instant>,
    first_answer: Option<Instant>,
    last_answer: Option<Instant>,
    /// Participants placed so far (calls started or reflector streams).
    placed: usize,
}

fn rooms_for(settings: &Settings) -> usize {
    if settings.reflector.is_some() {
        settings.participants
    } else if settings.mode == Mode::Quality {
        1
    } else {
        settings.numbers.len()
    }
}

impl<'a> Conference<'a> {
    fn seat(&self, i: usize) -> Seat {
        let s = self.settings;
        if s.reflector.is_some() {
            return Seat {
                room: i,
                member: 0,
                members: 1,
                hears_self: true,
            };
        }
        let rooms = rooms_for(s);
        let room = i % rooms;
        // Members of room r are r, r + rooms, r + 2·rooms, …
        let members = s.participants / rooms + usize::from(room < s.participants % rooms);
        Seat {
            room,
            member: i / rooms,
            members,
            hears_self: false,
        }
    }

    fn participant(&self, i: usize, spec: MediaSpec) -> ParticipantMedia {
        let s = self.settings;
        let seed = s.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rng = Rng64::new(seed);
        let voice = match s.voice {
            VoiceKind::Speech => Voice::Speech(SpeechLike::new(seed)),
            VoiceKind::Tone => Voice::Tone(Tone::new(300.0 + (i % 40) as f64 * 37.0, 8_000.0)),
        };
        let quality = s.mode == Mode::Quality;
        let talk = if quality { 0.0 } else { s.talk_fraction };
        let script = (quality && i >= 1 && i <= self.speech.len()).then(|| Script {
            pcm: self.speech[i - 1].clone(),
            delay: 1_000 * MS,
        });
        let recording = (quality && i == 0).then(|| {
            let length = s.window.as_nanos() as Nanos;
            Recording::new(length, (length / 125_000) as usize + 8_000)
        });
        let cfg = ParticipantConfig {
            id: i,
            seat: self.seat(i),
            voice,
            talk: TalkPattern::new(seed, talk),
            dtmf: s.pin.as_ref().map(|p| format!("{p}#")),
            dtmf_delay_frames: 25,
            script,
            recording,
            ssrc: rng.next_u64() as u32,
            seq: rng.next_u64() as u16,
            ts: rng.next_u64() as u32,
        };
        ParticipantMedia::new(cfg, spec, self.silence.clone())
    }

    fn place_call(&mut self, now: Instant, i: usize) -> Result<()> {
        let socket = sys::udp_socket(self.settings.local(0), self.settings.rtp_buffer)
            .map_err(Error::io("binding an RTP socket"))?;
        let rtp = socket
            .local_addr()
            .map_err(Error::io("RTP socket address"))?;
        let offer = build_offer(self.settings.codec, rtp, i as u64 + 1);
        let number = &self.settings.numbers[i % self.settings.numbers.len()];
        let Some(sig) = self.sig.as_mut() else {
            return Ok(());
        };
        let call = CallHandle(i as u32);
        sig.uac
            .start_call(now, call, number, offer.to_string().into_bytes());
        self.first_invite.get_or_insert(now);
        self.last_invite = Some(now);
        self.calls.attempted += 1;
        self.pending.insert(
            call,
            Pending {
                participant: i,
                socket,
                offer,
            },
        );
        Ok(())
    }

    fn start_media(&mut self, i: usize, spec: MediaSpec, socket: UdpSocket) {
        let media = Box::new(self.participant(i, spec));
        // The quality reference is the talkers' speech summed sample for
        // sample: they talk at once, so their frames leave together (one
        // thread, one send slot). Spread over threads and slots, their
        // packets would reach the bridge up to a few ms apart, and a tick
        // falling between them would mix one a frame later than the
        // others — a legitimate choice for independent callers, but not
        // the sum the reference is.
        let (w, slot) = if self.settings.mode == Mode::Quality {
            (0, Some(0))
        } else {
            (i % self.workers.len(), None)
        };
        let _ = self.workers[w]
            .tx
            .send(WorkerCommand::Add(media, socket, slot));
    }

    fn handle_events(&mut self, now: Instant) {
        while let Some(ev) = self.sig.as_mut().and_then(|s| s.uac.poll_event()) {
            match ev {
                CallEvent::Answered { call, setup, sdp } => {
                    let Some(p) = self.pending.remove(&call) else {
                        continue;
                    };
                    self.setup_ms.push(setup.as_secs_f64() * 1e3);
                    self.first_answer.get_or_insert(now);
                    self.last_answer = Some(now);
                    match negotiate(&p.offer, &sdp) {
                        Some(spec) => {
                            self.calls.answered += 1;
                            self.live.insert(call, p.participant);
                            self.start_media(p.participant, spec, p.socket);
                        }
                        None => {
                            self.calls.failed += 1;
                            *self
                                .calls
                                .failures
                                .entry("bad sdp answer".into())
                                .or_default() += 1;
                            if let Some(sig) = self.sig.as_mut() {
                                sig.uac.hang_up(now, call);
                            }
                        }
                    }
                }
                CallEvent::Failed { call, failure, .. } => {
                    self.pending.remove(&call);
                    self.calls.failed += 1;
                    *self
                        .calls
                        .failures
                        .entry(failure_key(&failure))
                        .or_default() += 1;
                }
                CallEvent::RemoteHangup { call } => {
                    self.calls.remote_hangups += 1;
                    if let Some(i) = self.live.remove(&call) {
                        let w = i % self.workers.len();
                        let _ = self.workers[w].tx.send(WorkerCommand::Remove(i));
                    }
                }
                CallEvent::Ended { call, answered } => {
                    self.calls.unanswered_byes += usize::from(!answered);
                    if let Some(i) = self.live.remove(&call) {
                        let w = i % self.workers.len();
                        let _ = self.workers[w].tx.send(WorkerCommand::Remove(i));
                    }
                }
            }
        }
    }

    /// Runs signalling, and places the calls still due (paced from
    /// `start` at the configured rate), until `until` or until `done`.
    fn drive(
        &mut self,
        until: Instant,
        start: Instant,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<()> {
        let s = self.settings;
        loop {
            let now = Instant::now();
            if now >= until || done(self) {
                return Ok(());
            }
            let mut next_call_at = until;
            while self.placed < s.participants {
                let due = start + Duration::from_secs_f64(self.placed as f64 / s.rate);
                if due > now {
                    next_call_at = due;
                    break;
                }
                if s.reflector.is_some() {
                    self.start_reflected(self.placed);
                } else {
                    self.place_call(now, self.placed)?;
                }
                self.placed += 1;
            }
            let Some(sig) = self.sig.as_mut() else {
                std::thread::sleep(
                    next_call_at
                        .min(until)
                        .saturating_duration_since(Instant::now())
                        .min(Duration::from_millis(5)),
                );
                continue;
            };
            sig.uac.handle_timeout(now);
            self.handle_events(now);
            let Some(sig) = self.sig.as_mut() else {
                continue;
            };
            sig.flush()?;
            let wake = sig
                .uac
                .poll_timeout()
                .unwrap_or(until)
                .min(next_call_at)
                .min(until);
            sig.pump(wake)?;
            let now = Instant::now();
            sig.uac.handle_timeout(now);
            self.handle_events(now);
            if let Some(sig) = self.sig.as_mut() {
                sig.flush()?;
            }
        }
    }

    fn start_reflected(&mut self, i: usize) {
        let Some(ports) = &self.settings.reflector else {
            return;
        };
        let remote = ports[i];
        let codec = self.settings.codec;
        let pt = codec.default_payload_type().unwrap_or(111);
        let Ok(socket) = sys::udp_socket(self.settings.local(0), self.settings.rtp_buffer) else {
            self.calls.failed += 1;
            *self.calls.failures.entry("socket".into()).or_default() += 1;
            return;
        };
        let spec = MediaSpec {
            codec,
            payload_type: pt,
            receive_payload_type: pt,
            telephone_event: None,
            remote,
        };
        self.calls.attempted += 1;
        self.calls.answered += 1;
        self.start_media(i, spec, socket);
    }

    fn broadcast(&self, cmd: impl Fn() -> WorkerCommand) {
        for w in &self.workers {
            let _ = w.tx.send(cmd());
        }
    }
}

fn conference(settings: &Settings) -> Result<Report> {
    let speech = settings
        .speech
        .iter()
        .map(|p| read_wav(p).map(Arc::new))
        .collect::<Result<Vec<_>>>()?;
    let quality = settings.mode == Mode::Quality;
    let mut s = settings.clone();
    if quality {
        s.numbers.truncate(1);
        s.participants = s.participants.max(1 + speech.len());
        s.marker_interval = Duration::ZERO;
        let longest = speech.iter().map(|v| v.len()).max().unwrap_or(0);
        // 1 s lead-in, the speech, 2 s to catch the tail through the bridge.
        s.window = Duration::from_millis(1_000 + longest as u64 / 8 + 2_000);
    }
    let settings = &s;
    let rooms = rooms_for(settings);
    let board = Arc::new(MarkerBoard::new(
        rooms,
        settings.marker_interval.as_nanos() as Nanos,
    ));
    let threads = settings.threads.clamp(1, 64);
    let workers = (0..threads)
        .map(|i| spawn_worker(i, board.clone()))
        .collect::<Result<Vec<_>>>()?;
    let sig = if settings.reflector.is_some() {
        None
    } else {
        Some(Signalling::new(settings, None)?)
    };
    let mut c = Conference {
        settings,
        board: board.clone(),
        workers,
        silence: silence_payload(settings.codec)?,
        speech: speech.clone(),
        sig,
        pending: HashMap::new(),
        live: HashMap::new(),
        calls: CallFigures::default(),
        setup_ms: Vec::new(),
        first_invite: None,
        last_invite: None,
        first_answer: None,
        last_answer: None,
        placed: 0,
    };

    let mut probe = settings
        .probe
        .map(|(pid, http)| ServerProbe::new(pid, http));
    // Join.
    let start = Instant::now();
    let join_limit = start
        + Duration::from_secs_f64(settings.participants as f64 / settings.rate)
        + settings.setup_timeout
        + Duration::from_secs(2);
    let n = settings.participants;
    c.drive(join_limit, start, |c| c.placed == n && c.pending.is_empty())?;
    // Settle.
    c.drive(Instant::now() + settings.settle, start, |_| false)?;
    // Measure.
    let window_start = sys::now();
    let cpu0 = CpuTime::read(None).map_err(Error::io("reading /proc/self/stat"))?;
    let machine0 = MachineTime::read().ok();
    let wall0 = Instant::now();
    c.broadcast(|| WorkerCommand::StartWindow(window_start));
    c.board.start(window_start + 500 * MS);
    if let Some(p) = probe.as_mut() {
        p.start();
    }
    let window_end = Instant::now() + settings.window;
    loop {
        // Rolling summaries (metrics-exporter-prometheus keeps about 60 s)
        // need a snapshot every 30 s for their maxima to cover the window;
        // rarer would miss some, more often would load the server (a
        // large `/metrics` page costs it real CPU to render).
        let next = (Instant::now() + PROBE_INTERVAL).min(window_end);
        c.drive(next, start, |_| false)?;
        if Instant::now() >= window_end {
            break;
        }
        if let Some(p) = probe.as_mut() {
            p.tick();
        }
    }
    c.broadcast(|| WorkerCommand::EndWindow);
    let cpu1 = CpuTime::read(None).map_err(Error::io("reading /proc/self/stat"))?;
    let loadgen_cpu = cpu_figures(cpu0, cpu1, wall0.elapsed());
    let server = probe.map(ServerProbe::finish);
    let machine = machine_figures(
        machine0,
        wall0.elapsed(),
        &loadgen_cpu,
        server.as_ref().map_or(0.0, |s| s.cpu_percent),
    );
    // Leave: at the join rate, but at least 200 calls per second.
    let leave_rate = settings.rate.max(200.0);
    let mut live: Vec<CallHandle> = c.live.keys().copied().collect();
    live.sort();
    let leave_start = Instant::now();
    for (k, call) in live.iter().enumerate() {
        let due = leave_start + Duration::from_secs_f64(k as f64 / leave_rate);
        c.drive(due, start, |_| false)?;
        if let Some(sig) = c.sig.as_mut() {
            sig.uac.hang_up(Instant::now(), *call);
        }
    }
    let leave_limit = Instant::now() + Duration::from_secs(40);
    c.drive(leave_limit, start, |c| {
        c.sig.as_ref().is_none_or(|s| s.uac.active_calls() == 0)
    })?;
    // Stop the workers.
    c.broadcast(|| WorkerCommand::Shutdown);
    let mut reports = Vec::new();
    let mut lateness = 0;
    let mut late_slots = 0;
    for w in std::mem::take(&mut c.workers) {
        let out = w.handle.join().map_err(|_| Error::Worker)??;
        reports.extend(out.reports);
        lateness = lateness.max(out.lateness_max);
        late_slots += out.late_slots;
    }
    reports.sort_by_key(|r| r.id);

    let mut calls = c.calls.clone();
    calls.setup_ms = Distribution::of(&mut c.setup_ms);
    (calls.achieved_rate, calls.offered_rate) = rates(
        (c.first_answer, c.last_answer, calls.answered),
        (c.first_invite, c.last_invite, calls.attempted),
    );
    if let Some(sig) = &c.sig {
        calls.retransmissions = sig.uac.retransmissions;
        calls.stray_datagrams = sig.uac.strays;
    }
    let quality_figures = if quality {
        Some(quality_outcome(settings, &speech, &mut reports)?)
    } else {
        None
    };
    let mut media = MediaFigures::from_participants(&reports);
    media.send_lateness_max_ms = lateness as f64 / 1e6;
    media.send_slots_late = late_slots;
    Ok(Report {
        mode: settings.mode.name().into(),
        target: match &settings.reflector {
            Some(_) => "reflector".into(),
            None => format!("{} ({})", settings.server, settings.numbers.join(",")),
        },
        codec: settings.codec.name().into(),
        participants: settings.participants,
        rooms,
        talk_fraction: if quality { 0.0 } else { settings.talk_fraction },
        window_s: settings.window.as_secs_f64(),
        calls,
        media,
        loadgen_cpu,
        machine,
        sink_packets: 0,
        quality: quality_figures,
        server,
        per_participant: if settings.per_participant {
            reports
        } else {
            Vec::new()
        },
    })
}

fn quality_outcome(
    settings: &Settings,
    speech: &[Arc<Vec<i16>>],
    reports: &mut [ParticipantReport],
) -> Result<QualityFigures> {
    let talkers: Vec<Vec<i16>> = speech.iter().map(|s| s.as_ref().clone()).collect();
    let refs = References::new(settings.codec, &talkers)?;
    let received = reports
        .iter_mut()
        .find(|r| r.id == 0)
        .and_then(|r| r.recording.take())
        .unwrap_or_default();
    let offset = align(&refs.codec_only, &received);
    let aligned: Vec<i16> = match offset {
        Some(o) => received[o..o + refs.codec_only.len()].to_vec(),
        None => received.clone(),
    };
    let continuity = offset.map(|_| Continuity::measure(&refs.codec_only, &aligned, 400));
    std::fs::create_dir_all(&settings.record_dir)
        .map_err(Error::io("creating the record directory"))?;
    let path = |name: &str| settings.record_dir.join(name);
    write_wav(&path("clean.wav"), &refs.clean)?;
    write_wav(&path("codec.wav"), &refs.codec_only)?;
    write_wav(&path("received.wav"), &aligned)?;
    Ok(QualityFigures {
        talkers: speech.len(),
        offset_samples: offset,
        continuity,
        clean_wav: path("clean.wav").display().to_string(),
        codec_wav: path("codec.wav").display().to_string(),
        received_wav: path("received.wav").display().to_string(),
    })
}

// ---------------------------------------------------------------------
// Call rate

fn call_rate(settings: &Settings) -> Result<Report> {
    let sink =
        sys::udp_socket(settings.local(0), 8 << 20).map_err(Error::io("binding the RTP sink"))?;
    let sink_addr = sink.local_addr().map_err(Error::io("RTP sink address"))?;
    let mut sig = Signalling::new(settings, Some(sink))?;
    let body = build_offer(settings.codec, sink_addr, 1)
        .to_string()
        .into_bytes();
    let number = settings.numbers[0].clone();
    let mut calls = CallFigures::default();
    let mut setup_ms = Vec::new();
    let mut hold_ms = Vec::new();
    let mut answered_at: HashMap<CallHandle, Instant> = HashMap::new();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut first_invite = None;
    let mut last_invite = None;
    let mut first_answer = None;
    let mut last_answer = None;
    let mut setup_failures = 0usize;
    let mut probe = settings
        .probe
        .map(|(pid, http)| ServerProbe::new(pid, http));
    if let Some(p) = probe.as_mut() {
        p.start();
    }
    let cpu0 = CpuTime::read(None).map_err(Error::io("reading /proc/self/stat"))?;
    let machine0 = MachineTime::read().ok();
    let start = Instant::now();
    let mut placed = 0usize;
    let limit = start
        + Duration::from_secs_f64(settings.participants as f64 / settings.rate)
        + settings.setup_timeout
        + settings.hold_limit
        + Duration::from_secs(40);
    loop {
        let now = Instant::now();
        if now >= limit {
            break;
        }
        let mut next_call_at = limit;
        while placed < settings.participants {
            let due = start + Duration::from_secs_f64(placed as f64 / settings.rate);
            if due > now {
                next_call_at = due;
                break;
            }
            sig.uac
                .start_call(now, CallHandle(placed as u32), &number, body.clone());
            first_invite.get_or_insert(now);
            last_invite = Some(now);
            calls.attempted += 1;
            placed += 1;
        }
        // Calls the server did not hang up in time: we do it, and they
        // count as failures of the test number.
        let overdue: Vec<CallHandle> = answered_at
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) > settings.hold_limit)
            .map(|(c, _)| *c)
            .collect();
        for call in overdue {
            answered_at.remove(&call);
            *failures
                .entry("not hung up by the server".into())
                .or_default() += 1;
            calls.failed += 1;
            sig.uac.hang_up(now, call);
        }
        sig.uac.handle_timeout(now);
        while let Some(ev) = sig.uac.poll_event() {
            match ev {
                CallEvent::Answered { call, setup, .. } => {
                    calls.answered += 1;
                    setup_ms.push(setup.as_secs_f64() * 1e3);
                    answered_at.insert(call, now);
                    first_answer.get_or_insert(now);
                    last_answer = Some(now);
                }
                CallEvent::Failed { failure, .. } => {
                    calls.failed += 1;
                    setup_failures += 1;
                    *failures.entry(failure_key(&failure)).or_default() += 1;
                }
                CallEvent::RemoteHangup { call } => {
                    calls.remote_hangups += 1;
                    if let Some(at) = answered_at.remove(&call) {
                        hold_ms.push(now.saturating_duration_since(at).as_secs_f64() * 1e3);
                    }
                }
                CallEvent::Ended { answered, .. } => {
                    calls.unanswered_byes += usize::from(!answered);
                }
            }
        }
        sig.flush()?;
        // Checked after the events are counted: the last call's outcome
        // arrives with the datagram that ends it.
        if placed == settings.participants && sig.uac.active_calls() == 0 {
            break;
        }
        let wake = sig
            .uac
            .poll_timeout()
            .unwrap_or(limit)
            .min(next_call_at)
            .min(now + Duration::from_millis(50));
        sig.pump(wake)?;
    }
    let cpu1 = CpuTime::read(None).map_err(Error::io("reading /proc/self/stat"))?;
    let server = probe.map(ServerProbe::finish);
    calls.failures = failures;
    calls.setup_ms = Distribution::of(&mut setup_ms);
    calls.hold_ms = Distribution::of(&mut hold_ms);
    calls.retransmissions = sig.uac.retransmissions;
    calls.stray_datagrams = sig.uac.strays;
    // Anything still in flight at the limit never completed.
    let unresolved = calls
        .attempted
        .saturating_sub(calls.answered + setup_failures);
    if unresolved > 0 {
        calls.failed += unresolved;
        calls.failures.insert("unresolved".into(), unresolved);
    }
    (calls.achieved_rate, calls.offered_rate) = rates(
        (first_answer, last_answer, calls.answered),
        (first_invite, last_invite, calls.attempted),
    );
    Ok(Report {
        mode: settings.mode.name().into(),
        target: format!("{} ({number})", settings.server),
        codec: settings.codec.name().into(),
        participants: settings.participants,
        rooms: 0,
        talk_fraction: 0.0,
        window_s: start.elapsed().as_secs_f64(),
        calls,
        media: MediaFigures::default(),
        machine: machine_figures(
            machine0,
            start.elapsed(),
            &cpu_figures(cpu0, cpu1, start.elapsed()),
            server.as_ref().map_or(0.0, |s| s.cpu_percent),
        ),
        loadgen_cpu: cpu_figures(cpu0, cpu1, start.elapsed()),
        sink_packets: sig.sink_packets,
        quality: None,
        server,
        per_participant: Vec::new(),
    })
}

/// Events per second over (first, last, count) spans: `count − 1`
/// intervals between the first and the last event (0 with fewer than two).
fn rates(
    answers: (Option<Instant>, Option<Instant>, usize),
    invites: (Option<Instant>, Option<Instant>, usize),
) -> (f64, f64) {
    let rate = |(a, b, n): (Option<Instant>, Option<Instant>, usize)| match (a, b) {
        (Some(a), Some(b)) if n > 1 => {
            let span = b.saturating_duration_since(a).as_secs_f64();
            if span > 0.0 {
                (n - 1) as f64 / span
            } else {
                0.0
            }
        }
        _ => 0.0,
    };
    (rate(answers), rate(invites))
}

/// Parses `800,801,8000-8003` into the numbers it names. Ranges keep the
/// width of their first bound (`0800-0802` gives `0800 0801 0802`).
pub fn parse_numbers(spec: &str) -> Result<Vec<String>> {
    let bad = || {
        Error::Settings(format!(
            "bad number list {spec:?} (e.g. 800,801 or 8000-8399)"
        ))
    };
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let lo: u64 = a.trim().parse().map_err(|_| bad())?;
                let hi: u64 = b.trim().parse().map_err(|_| bad())?;
                if hi < lo || hi - lo > 100_000 {
                    return Err(bad());
                }
                let width = a.trim().len();
                out.extend((lo..=hi).map(|n| format!("{n:0width$}")));
            }
            None => {
                if !part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"*#+".contains(&b))
                {
                    return Err(bad());
                }
                out.push(part.to_owned());
            }
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_lists() {
        assert_eq!(parse_numbers("800").expect("one"), vec!["800"]);
        assert_eq!(
            parse_numbers("800, 801,8000-8002").expect("mixed"),
            vec!["800", "801", "8000", "8001", "8002"]
        );
        assert_eq!(
            parse_numbers("08-10").expect("width"),
            vec!["08", "09", "10"]
        );
        for bad in ["", "8-2", "80a0-9", "8 00", "1-999999999", ","] {
            assert!(parse_numbers(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn offers_and_answers() {
        let rtp: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        let o = build_offer(Codec::Pcma, rtp, 7);
        let text = o.to_string();
        assert!(text.contains("m=audio 40000 RTP/AVP 8 101"), "{text}");
        assert!(text.contains("a=rtcp-mux"));
        let answer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
            m=audio 20002 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp-mux\r\n";
        let spec = negotiate(&o, answer.as_bytes()).expect("negotiated");
        assert_eq!(spec.codec, Codec::Pcma);
        assert_eq!(spec.payload_type, 8);
        assert_eq!(spec.telephone_event, Some(101));
        assert_eq!(
            spec.remote,
            "127.0.0.1:20002".parse::<SocketAddr>().expect("addr")
        );
        assert!(negotiate(&o, b"garbage").is_none());
        let opus = build_offer(Codec::Opus, rtp, 7).to_string();
        assert!(
            opus.contains("opus/48000/2") && opus.contains("telephone-event/48000"),
            "{opus}"
        );
    }

    #[test]
    fn seats_share_rooms_round_robin() {
        let mut s = Settings::new("127.0.0.1:5060".parse().expect("addr"));
        s.numbers = parse_numbers("1-3").expect("rooms");
        s.participants = 8;
        let board = Arc::new(MarkerBoard::new(3, 0));
        let c = Conference {
            settings: &s,
            board,
            workers: Vec::new(),
            silence: silence_payload(Codec::Pcmu).expect("silence"),
            speech: Vec::new(),
            sig: None,
            pending: HashMap::new(),
            live: HashMap::new(),
            calls: CallFigures::default(),
            setup_ms: Vec::new(),
            first_invite: None,
            last_invite: None,
            first_answer: None,
            last_answer: None,
            placed: 0,
        };
        let seats: Vec<(usize, usize, usize)> = (0..8)
            .map(|i| c.seat(i))
            .map(|s| (s.room, s.member, s.members))
            .collect();
        assert_eq!(
            seats,
            vec![
                (0, 0, 3),
                (1, 0, 3),
                (2, 0, 2),
                (0, 1, 3),
                (1, 1, 3),
                (2, 1, 2),
                (0, 2, 3),
                (1, 2, 3)
            ]
        );
    }
}
