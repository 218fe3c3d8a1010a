//! The media runtime: worker threads, RTP sockets and 20 ms ticks that
//! drive the sans-IO rooms of `palaver-media`.
//!
//! Meet first: [`MediaEngine`] (`start` it with an [`EngineConfig`]: a port
//! range and a number of workers), [`EngineHandle`] (thread-safe, cheap to
//! clone: what the async control plane holds; `create_room` gives a
//! [`RoomHandle`] and the room's event receiver) and [`RoomHandle`]
//! (`add_participant` binds the RTP/RTCP sockets before it returns, so the
//! local address can go into the SDP answer; commands; `close`).
//!
//! Each worker thread owns whole rooms and their sockets and waits on
//! epoll (mio) for packets, commands and its next tick; nothing is shared
//! between rooms on the per-tick path. Control calls never wait for a
//! worker: they bind sockets or load prompts on the caller's thread and
//! post a command. Events come back on a bounded tokio channel per room;
//! the worker uses `try_send` and counts what it had to drop
//! (`palaver_media_events_dropped_total`). Recordings are written by a
//! writer thread per worker.
//!
//! Time: each packet is handed to its room with the kernel's receive
//! timestamp, and each tick with its nominal time — a worker that wakes
//! late runs the ticks it missed (up to 200 ms of them) — so a busy machine
//! does not look like a jittery network to the jitter buffers.
//!
//! Exported metrics: histograms `palaver_mixer_tick_seconds` (decode, mix
//! and encode of all the worker's rooms for one tick),
//! `palaver_mixer_tick_send_seconds` (handing that tick's packets to the
//! kernel) and `palaver_mixer_tick_lateness_seconds` (per worker; a
//! catch-up tick records how late it ran), counters `palaver_mixer_ticks_skipped_total`
//! (ticks given up when more than 200 ms behind),
//! `palaver_mixer_ticks_late_total` (ticks begun more than 20 ms late) and
//! `palaver_rtp_unstamped_total` (packets without a kernel stamp),
//! counters `palaver_rtp_received_packets_total`,
//! `palaver_rtp_lost_packets_total` and
//! `palaver_rtp_strangers_dropped_total`, and histograms of the
//! participants' reports `palaver_rtp_loss_fraction`,
//! `palaver_rtp_jitter_seconds` and `palaver_rtp_rtt_seconds` — all per
//! worker, none per participant (see `worker::WorkerMetrics`).
//!
//! Not here: SIP and SDP (the integrator passes a negotiated
//! [`ParticipantSpec`]) and the conference logic (it reacts to events).
//!
//! ```no_run
//! # fn main() -> Result<(), palaver_media_rt::Error> {
//! use palaver_media::codec::Codec;
//! use palaver_media::room::ParticipantSpec;
//! use palaver_media_rt::{EngineConfig, MediaEngine, RoomSettings};
//! let engine = MediaEngine::start(EngineConfig::new([127, 0, 0, 1].into(), 20000, 20999))?;
//! let (room, mut events) = engine.handle().create_room(RoomSettings::default())?;
//! let info = room.add_participant(ParticipantSpec::new(Codec::Pcmu, Some("127.0.0.1:4000".parse().unwrap())))?;
//! println!("answer with port {}", info.local_rtp.port());
//! # let _ = events.try_recv();
//! # Ok(()) }
//! ```

mod arrival;
mod error;
mod ports;
mod tick;
mod worker;
mod writer;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use error::{Error, Result};
use palaver_media::room::{MediaEvent, ParticipantId, ParticipantSpec, RoomCommand, RoomConfig};
use palaver_media::source::{Playback, PromptCache};
use ports::PortPool;
use worker::{WAKER, Worker, WorkerCommand};
use writer::WriterMsg;

/// Identifies a room inside the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub u64);

impl std::fmt::Display for RoomId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a room tells the control plane.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomEvent {
    /// From the media core (DTMF, talking, prompts, timeouts, stats...).
    Media(MediaEvent),
    /// A recording's file is complete.
    RecordingFinished {
        /// Its id.
        recording: u64,
        /// The WAV file.
        path: PathBuf,
        /// Samples written.
        samples: u64,
    },
    /// A recording could not be written.
    RecordingFailed {
        /// Its id.
        recording: u64,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A command was rejected by the worker (e.g. unknown participant).
    CommandFailed {
        /// Why.
        reason: String,
    },
    /// The room was closed; no more events follow.
    Closed,
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Address RTP sockets bind to.
    pub bind_ip: IpAddr,
    /// Lowest RTP port (rounded up to even).
    pub rtp_port_low: u16,
    /// Highest port (RTCP of the last pair included).
    pub rtp_port_high: u16,
    /// Worker threads (default: one per core).
    pub workers: usize,
    /// Recording blocks queued per worker before blocks are dropped.
    pub record_queue: usize,
    /// Directories whose crashed recordings are repaired at start.
    pub repair_dirs: Vec<PathBuf>,
}

impl EngineConfig {
    /// One worker per core, the given address and port range.
    pub fn new(bind_ip: IpAddr, rtp_port_low: u16, rtp_port_high: u16) -> Self {
        Self {
            bind_ip,
            rtp_port_low,
            rtp_port_high,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            record_queue: 1024,
            repair_dirs: Vec::new(),
        }
    }

    /// Parses `--rtp-ports LOW-HIGH`.
    pub fn parse_port_range(s: &str) -> Result<(u16, u16)> {
        let bad = || Error::BadPortRange { low: 0, high: 0 };
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let low: u16 = a.trim().parse().map_err(|_| bad())?;
        let high: u16 = b.trim().parse().map_err(|_| bad())?;
        if low >= high {
            return Err(Error::BadPortRange { low, high });
        }
        Ok((low, high))
    }
}

/// Per-room settings.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    /// The media core's room configuration (rate, K talkers...).
    pub media: RoomConfig,
    /// Capacity of the room's event channel.
    pub event_capacity: usize,
}

impl Default for RoomSettings {
    fn default() -> Self {
        Self {
            media: RoomConfig {
                stats_interval: Some(Duration::from_secs(5)),
                ..Default::default()
            },
            // A periodic stats burst is one event per participant.
            event_capacity: 4096,
        }
    }
}

/// What `add_participant` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParticipantInfo {
    /// The participant's id in its room.
    pub id: ParticipantId,
    /// Local RTP address (for the SDP answer).
    pub local_rtp: SocketAddr,
    /// Local RTCP address (None with rtcp-mux).
    pub local_rtcp: Option<SocketAddr>,
}

struct WorkerLink {
    commands: Sender<WorkerCommand>,
    waker: Arc<mio::Waker>,
    writer: SyncSender<WriterMsg>,
}

pub(crate) struct Shared {
    workers: Vec<WorkerLink>,
    pub(crate) ports: Mutex<PortPool>,
    pub(crate) rooms: Vec<AtomicUsize>,
    pub(crate) participants: Vec<AtomicUsize>,
    pub(crate) events_dropped: AtomicU64,
    /// Per worker: packets read without a usable kernel receive stamp.
    pub(crate) unstamped: Vec<AtomicU64>,
    next_room: AtomicU64,
    next_participant: AtomicU32,
    next_recording: AtomicU64,
    prompts: Mutex<PromptCache>,
}

impl Shared {
    fn send(&self, worker: usize, cmd: WorkerCommand) -> Result<()> {
        let link = &self.workers[worker];
        link.commands.send(cmd).map_err(|_| Error::WorkerGone)?;
        link.waker.wake().map_err(|source| Error::Io {
            what: "waking a media worker",
            source,
        })
    }
}

/// The running engine. Dropping it stops the workers.
pub struct MediaEngine {
    handle: EngineHandle,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for MediaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEngine")
            .field("workers", &self.threads.len())
            .finish()
    }
}

impl MediaEngine {
    /// Repairs crashed recordings, then starts the workers.
    pub fn start(cfg: EngineConfig) -> Result<Self> {
        for dir in &cfg.repair_dirs {
            match palaver_media::recorder::repair_dir(dir) {
                Ok(fixed) => {
                    for f in fixed {
                        tracing::warn!(file = %f.display(), "repaired a recording left by a crash");
                    }
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not scan for crashed recordings")
                }
            }
        }
        let pool = PortPool::new(cfg.bind_ip, cfg.rtp_port_low, cfg.rtp_port_high)?;
        let n = cfg.workers.max(1);
        let mut links = Vec::new();
        let mut parts = Vec::new();
        for _ in 0..n {
            let poll = mio::Poll::new().map_err(|source| Error::Io {
                what: "creating a poller",
                source,
            })?;
            let waker =
                Arc::new(
                    mio::Waker::new(poll.registry(), WAKER).map_err(|source| Error::Io {
                        what: "creating a waker",
                        source,
                    })?,
                );
            let (ctx, crx) = std::sync::mpsc::channel();
            let (wtx, wrx) = std::sync::mpsc::sync_channel(cfg.record_queue.max(8));
            let (rtx, rrx) = std::sync::mpsc::sync_channel(cfg.record_queue.max(8));
            links.push(WorkerLink {
                commands: ctx,
                waker,
                writer: wtx.clone(),
            });
            parts.push((poll, crx, wtx, wrx, rtx, rrx));
        }
        let shared = Arc::new(Shared {
            workers: links,
            ports: Mutex::new(pool),
            rooms: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            participants: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            events_dropped: AtomicU64::new(0),
            unstamped: (0..n).map(|_| AtomicU64::new(0)).collect(),
            next_room: AtomicU64::new(1),
            next_participant: AtomicU32::new(1),
            next_recording: AtomicU64::new(1),
            prompts: Mutex::new(PromptCache::new()),
        });
        let mut threads = Vec::new();
        for (i, (poll, crx, wtx, wrx, rtx, rrx)) in parts.into_iter().enumerate() {
            let w = Worker::new(i, poll, crx, shared.clone(), wtx, rrx);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("media-{i}"))
                    .spawn(move || w.run())
                    .map_err(|source| Error::Io {
                        what: "spawning a media worker",
                        source,
                    })?,
            );
            threads.push(
                std::thread::Builder::new()
                    .name(format!("media-rec-{i}"))
                    .spawn(move || writer::run(wrx, rtx))
                    .map_err(|source| Error::Io {
                        what: "spawning a recording writer",
                        source,
                    })?,
            );
        }
        Ok(Self {
            handle: EngineHandle { shared },
            threads,
        })
    }

    /// A handle for the control plane.
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Closes every room and joins the threads.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        for i in 0..self.handle.shared.workers.len() {
            let _ = self.handle.shared.send(i, WorkerCommand::Shutdown);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for MediaEngine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// 64 random bits from the standard library's per-process hash keys (no
/// extra dependency; good enough for SSRCs and initial sequence numbers).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Current wall-clock time as a 64-bit NTP timestamp.
fn ntp_now() -> u64 {
    // Seconds from 1900 (NTP epoch) to 1970 (Unix epoch).
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    ((d.as_secs() + NTP_UNIX_OFFSET) << 32) | frac
}

/// Thread-safe entry point for the control plane.
#[derive(Clone)]
pub struct EngineHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHandle").finish_non_exhaustive()
    }
}

impl EngineHandle {
    /// Creates a room on the least loaded worker. Events arrive on the
    /// returned receiver.
    pub fn create_room(
        &self,
        mut settings: RoomSettings,
    ) -> Result<(RoomHandle, tokio::sync::mpsc::Receiver<RoomEvent>)> {
        let shared = &self.shared;
        // Unpredictable SSRCs and sequence numbers per room, and sender
        // reports stamped with wall-clock NTP time.
        settings.media.seed ^= random_u64();
        settings.media.ntp_at_start = ntp_now();
        let worker = (0..shared.workers.len())
            .min_by_key(|&i| {
                shared.participants[i].load(Ordering::Relaxed) * 4
                    + shared.rooms[i].load(Ordering::Relaxed)
            })
            .unwrap_or(0);
        let id = RoomId(shared.next_room.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = tokio::sync::mpsc::channel(settings.event_capacity.max(16));
        let rate = settings.media.sample_rate;
        shared.rooms[worker].fetch_add(1, Ordering::Relaxed);
        shared.send(
            worker,
            WorkerCommand::CreateRoom {
                id,
                config: settings.media,
                events: tx.clone(),
            },
        )?;
        Ok((
            RoomHandle {
                shared: self.shared.clone(),
                worker,
                id,
                rate,
                events: tx,
            },
            rx,
        ))
    }

    /// Events the workers could not deliver because a room's channel was
    /// full.
    pub fn events_dropped(&self) -> u64 {
        self.shared.events_dropped.load(Ordering::Relaxed)
    }

    /// Packets (RTP and RTCP) whose arrival time had to be taken when the
    /// worker read them because the kernel gave no usable receive stamp.
    /// Stays 0 on Linux.
    pub fn unstamped_packets(&self) -> u64 {
        self.shared
            .unstamped
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// RTP port pairs in use.
    pub fn ports_in_use(&self) -> usize {
        self.shared.ports.lock().map_or(0, |p| p.in_use())
    }

    /// Forgets a cached prompt (after its file was replaced).
    pub fn invalidate_prompt(&self, path: &Path) {
        if let Ok(mut c) = self.shared.prompts.lock() {
            c.invalidate(path);
        }
    }
}

/// A room on some worker. Cloning gives another handle to the same room.
#[derive(Clone)]
pub struct RoomHandle {
    shared: Arc<Shared>,
    worker: usize,
    id: RoomId,
    rate: u32,
    events: tokio::sync::mpsc::Sender<RoomEvent>,
}

impl std::fmt::Debug for RoomHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomHandle")
            .field("id", &self.id)
            .field("worker", &self.worker)
            .finish()
    }
}

impl RoomHandle {
    /// The room's id.
    pub fn id(&self) -> RoomId {
        self.id
    }

    /// The room's mixing rate.
    pub fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// Binds the participant's sockets and adds it. Returns as soon as the
    /// sockets are bound (the worker picks the command up within a tick).
    pub fn add_participant(&self, spec: ParticipantSpec) -> Result<ParticipantInfo> {
        let ports = self
            .shared
            .ports
            .lock()
            .map_err(|_| Error::WorkerGone)?
            .bind(spec.rtcp_mux)?;
        let local = |s: &std::net::UdpSocket| {
            s.local_addr().map_err(|source| Error::Io {
                what: "reading a local address",
                source,
            })
        };
        let info = ParticipantInfo {
            id: ParticipantId(self.shared.next_participant.fetch_add(1, Ordering::Relaxed)),
            local_rtp: local(&ports.rtp)?,
            local_rtcp: ports.rtcp.as_ref().map(local).transpose()?,
        };
        self.shared.participants[self.worker].fetch_add(1, Ordering::Relaxed);
        self.shared.send(
            self.worker,
            WorkerCommand::AddParticipant {
                room: self.id,
                id: info.id,
                spec,
                ports,
            },
        )?;
        Ok(info)
    }

    /// Removes a participant and frees its ports.
    pub fn remove_participant(&self, id: ParticipantId) -> Result<()> {
        self.shared.send(
            self.worker,
            WorkerCommand::RemoveParticipant { room: self.id, id },
        )
    }

    /// Any other room command (mute, deaf, hold, play, K talkers...).
    pub fn command(&self, cmd: RoomCommand) -> Result<()> {
        if let RoomCommand::AddParticipant { .. } | RoomCommand::RemoveParticipant { .. } = cmd {
            // Those need sockets: use add_participant / remove_participant.
            return Err(Error::WrongMethod(
                "use add_participant / remove_participant for these",
            ));
        }
        self.shared
            .send(self.worker, WorkerCommand::Room { room: self.id, cmd })
    }

    /// A digit received by SIP INFO.
    pub fn dtmf_info(&self, id: ParticipantId, digit: char, duration: Duration) -> Result<()> {
        self.shared.send(
            self.worker,
            WorkerCommand::DtmfInfo {
                room: self.id,
                id,
                digit,
                duration,
            },
        )
    }

    /// Plays a WAV file (any rate; converted once and cached) to one
    /// participant or, with `None`, to the room. Reads the file on the
    /// calling thread: from async code, call it inside `spawn_blocking`.
    pub fn play_file(
        &self,
        to: Option<ParticipantId>,
        path: &Path,
        playback_id: u64,
    ) -> Result<()> {
        let prompt = self
            .shared
            .prompts
            .lock()
            .map_err(|_| Error::WorkerGone)?
            .get(path, self.rate)?;
        let playback = Playback::prompt(playback_id, prompt);
        self.command(match to {
            Some(id) => RoomCommand::Play { id, playback },
            None => RoomCommand::PlayRoom { playback },
        })
    }

    /// Music on hold from a WAV file for one participant (`None` stops it).
    pub fn music_on_hold(&self, id: ParticipantId, path: Option<&Path>) -> Result<()> {
        let music = match path {
            Some(p) => Some(
                self.shared
                    .prompts
                    .lock()
                    .map_err(|_| Error::WorkerGone)?
                    .get(p, self.rate)?,
            ),
            None => None,
        };
        self.command(RoomCommand::MusicOnHold { id, music })
    }

    /// Starts recording the room mix to `path` (16-bit PCM WAV at the room
    /// rate). Returns the recording id echoed in `RecordingFinished`.
    pub fn start_recording(&self, path: PathBuf) -> Result<u64> {
        let recording = self.shared.next_recording.fetch_add(1, Ordering::Relaxed);
        self.shared.workers[self.worker]
            .writer
            .send(WriterMsg::Open {
                room: self.id,
                recording,
                path,
                rate: self.rate,
                events: self.events.clone(),
            })
            .map_err(|_| Error::WorkerGone)?;
        self.command(RoomCommand::StartRecording { recording })?;
        Ok(recording)
    }

    /// Stops the recording in progress (its file is finished by the writer).
    pub fn stop_recording(&self) -> Result<()> {
        self.command(RoomCommand::StopRecording)
    }

    /// Closes the room: participants' ports are freed, a recording is
    /// finished, and `RoomEvent::Closed` is the last event.
    pub fn close(&self) -> Result<()> {
        self.shared
            .send(self.worker, WorkerCommand::CloseRoom { id: self.id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_and_ntp_is_wall_clock() {
        assert_ne!(random_u64(), random_u64());
        let secs = ntp_now() >> 32;
        // After 2026-01-01 in NTP seconds.
        assert!(secs > 3_976_214_400, "{secs}");
    }

    #[test]
    fn port_range_parsing() {
        assert_eq!(
            EngineConfig::parse_port_range("10000-20000").unwrap(),
            (10000, 20000)
        );
        assert!(EngineConfig::parse_port_range("20000-10000").is_err());
        assert!(EngineConfig::parse_port_range("abc").is_err());
    }
}
