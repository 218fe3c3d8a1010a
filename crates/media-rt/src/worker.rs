//! One media worker thread: owns whole rooms and their sockets, waits on
//! epoll (mio) for packets, commands and the next 20 ms tick, and drives
//! each `MediaRoom` through its handle/poll cycle.
//!
//! Time, as the rooms see it: a packet's `now` is its kernel receive stamp
//! ([`crate::arrival`]; the read time only where the kernel gives none),
//! and a tick's `now` is its nominal time from [`crate::tick::TickClock`],
//! missed ticks included. So when the machine is busy and the thread
//! oversleeps, the rooms see the network as it was and their jitter
//! buffers neither grow nor drop frames for it.
//!
//! Nothing here is shared with other workers on the per-tick path: rooms,
//! sockets and buffers are owned by the thread. The port pool mutex is only
//! taken when participants leave.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

use metrics::{Counter, Histogram};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use palaver_media::room::{
    MediaEvent, MediaRoom, PacketKind, ParticipantId, ParticipantSpec, ParticipantStats,
    RoomCommand, RoomConfig, TICK,
};
use tokio::sync::mpsc::Sender;

use crate::arrival::{self, ClockAnchor};
use crate::ports::BoundPorts;
use crate::tick::TickClock;
use crate::writer::WriterMsg;
use crate::{RoomEvent, RoomId, Shared};

pub(crate) const WAKER: Token = Token(usize::MAX);

pub(crate) enum WorkerCommand {
    CreateRoom {
        id: RoomId,
        config: RoomConfig,
        events: Sender<RoomEvent>,
    },
    CloseRoom {
        id: RoomId,
    },
    AddParticipant {
        room: RoomId,
        id: ParticipantId,
        spec: ParticipantSpec,
        ports: BoundPorts,
    },
    RemoveParticipant {
        room: RoomId,
        id: ParticipantId,
    },
    Room {
        room: RoomId,
        cmd: RoomCommand,
    },
    DtmfInfo {
        room: RoomId,
        id: ParticipantId,
        digit: char,
        duration: Duration,
    },
    Shutdown,
}

struct SocketEntry {
    socket: UdpSocket,
    room: RoomId,
    participant: ParticipantId,
    rtcp: bool,
}

/// A participant's cumulative receive counts as last added to the
/// worker's counters (the room reports totals; the counters want deltas).
#[derive(Default)]
struct Tally {
    received: u64,
    lost: i64,
    strangers: u64,
}

struct Legs {
    rtp: usize,
    rtcp: Option<usize>,
    port: u16,
    tally: Tally,
}

struct RoomEntry {
    room: MediaRoom,
    events: Sender<RoomEvent>,
    legs: HashMap<ParticipantId, Legs>,
}

/// Per worker, never per participant: series labelled by participant
/// would grow with every call ever made (the exporter never forgets one)
/// and cost a registration per call. Per-participant figures go to the
/// control plane in `MediaEvent::Stats`.
struct WorkerMetrics {
    rtp_received: Counter,
    rtp_lost: Counter,
    strangers: Counter,
    loss_fraction: Histogram,
    jitter: Histogram,
    rtt: Histogram,
    tick: Histogram,
    tick_send: Histogram,
    lateness: Histogram,
    ticks_skipped: Counter,
    /// Ticks that began more than a tick after their nominal time (the
    /// summaries only keep quantiles; this is the count).
    ticks_late: Counter,
    unstamped: Counter,
    events_dropped: Counter,
    send_dropped: Counter,
    record_dropped: Counter,
}

pub(crate) struct Worker {
    index: usize,
    poll: Poll,
    commands: Receiver<WorkerCommand>,
    rooms: HashMap<RoomId, RoomEntry>,
    sockets: Vec<Option<SocketEntry>>,
    free_tokens: Vec<usize>,
    shared: Arc<Shared>,
    writer: SyncSender<WriterMsg>,
    returns: Receiver<(RoomId, Vec<i16>)>,
    recv: arrival::RecvBatch,
    send_buf: Vec<u8>,
    metrics: WorkerMetrics,
}

/// Adds what a participant received since its last report to the
/// worker's counters.
fn count(tally: &mut Tally, stats: &ParticipantStats, metrics: &WorkerMetrics) {
    let (received, lost, strangers) = tally.advance(stats);
    metrics.rtp_received.increment(received);
    metrics.rtp_lost.increment(lost);
    metrics.strangers.increment(strangers);
}

impl Tally {
    /// What `stats` adds to the last totals (received, lost, strangers),
    /// remembering the new totals.
    fn advance(&mut self, stats: &ParticipantStats) -> (u64, u64, u64) {
        let received = stats.packets_received.saturating_sub(self.received);
        let strangers = stats.strangers_dropped.saturating_sub(self.strangers);
        // RFC 3550's cumulative loss goes down when duplicates arrive; a
        // counter only goes up, so it waits until the loss is above what
        // was already counted.
        let lost = if stats.packets_lost > self.lost {
            let d = stats.packets_lost.abs_diff(self.lost);
            self.lost = stats.packets_lost;
            d
        } else {
            0
        };
        self.received = self.received.max(stats.packets_received);
        self.strangers = self.strangers.max(stats.strangers_dropped);
        (received, lost, strangers)
    }
}

/// Sends everything a room produced: datagrams out of the right socket,
/// events to the control plane (never blocking), record blocks to the
/// writer.
fn flush(
    entry: &mut RoomEntry,
    room_id: RoomId,
    sockets: &[Option<SocketEntry>],
    out: &mut [u8],
    writer: &SyncSender<WriterMsg>,
    metrics: &WorkerMetrics,
    shared: &Shared,
) {
    while let Some(t) = entry.room.poll_transmit(out) {
        let Some(legs) = entry.legs.get(&t.participant) else {
            continue;
        };
        let token = match (t.kind, legs.rtcp) {
            (PacketKind::Rtcp, Some(r)) => r,
            _ => legs.rtp,
        };
        if let Some(Some(s)) = sockets.get(token)
            && s.socket.send_to(&out[..t.len], t.to).is_err()
        {
            // Full socket buffer or unreachable peer: RTP is loss-tolerant.
            metrics.send_dropped.increment(1);
        }
    }
    while let Some(e) = entry.room.poll_event() {
        if let MediaEvent::Stats { participant, stats } = &e
            && let Some(legs) = entry.legs.get_mut(participant)
        {
            metrics.loss_fraction.record(f64::from(stats.fraction_lost));
            metrics.jitter.record(stats.jitter_ms / 1000.0);
            if let Some(rtt) = stats.rtt {
                metrics.rtt.record(rtt.as_secs_f64());
            }
            count(&mut legs.tally, stats, metrics);
        }
        if entry.events.try_send(RoomEvent::Media(e)).is_err() {
            metrics.events_dropped.increment(1);
            shared.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
    while let Some(b) = entry.room.poll_record_block() {
        if let Err(err) = writer.try_send(WriterMsg::Block {
            room: room_id,
            block: b,
        }) {
            metrics.record_dropped.increment(1);
            if let std::sync::mpsc::TrySendError::Full(WriterMsg::Block { block, .. })
            | std::sync::mpsc::TrySendError::Disconnected(WriterMsg::Block { block, .. }) = err
            {
                entry.room.recycle_record_block(block.samples);
            }
        }
    }
}

impl Worker {
    pub(crate) fn new(
        index: usize,
        poll: Poll,
        commands: Receiver<WorkerCommand>,
        shared: Arc<Shared>,
        writer: SyncSender<WriterMsg>,
        returns: Receiver<(RoomId, Vec<i16>)>,
    ) -> Self {
        let w = index.to_string();
        Self {
            index,
            poll,
            commands,
            rooms: HashMap::new(),
            sockets: Vec::new(),
            free_tokens: Vec::new(),
            shared,
            writer,
            returns,
            recv: arrival::RecvBatch::new(),
            send_buf: vec![0; 2048],
            metrics: WorkerMetrics {
                rtp_received: metrics::counter!("palaver_rtp_received_packets_total", "worker" => w.clone()),
                rtp_lost: metrics::counter!("palaver_rtp_lost_packets_total", "worker" => w.clone()),
                strangers: metrics::counter!("palaver_rtp_strangers_dropped_total", "worker" => w.clone()),
                loss_fraction: metrics::histogram!("palaver_rtp_loss_fraction", "worker" => w.clone()),
                jitter: metrics::histogram!("palaver_rtp_jitter_seconds", "worker" => w.clone()),
                rtt: metrics::histogram!("palaver_rtp_rtt_seconds", "worker" => w.clone()),
                tick: metrics::histogram!("palaver_mixer_tick_seconds", "worker" => w.clone()),
                tick_send: metrics::histogram!("palaver_mixer_tick_send_seconds", "worker" => w.clone()),
                lateness: metrics::histogram!("palaver_mixer_tick_lateness_seconds", "worker" => w.clone()),
                ticks_skipped: metrics::counter!("palaver_mixer_ticks_skipped_total", "worker" => w.clone()),
                ticks_late: metrics::counter!("palaver_mixer_ticks_late_total", "worker" => w.clone()),
                unstamped: metrics::counter!("palaver_rtp_unstamped_total", "worker" => w.clone()),
                events_dropped: metrics::counter!("palaver_media_events_dropped_total", "worker" => w.clone()),
                send_dropped: metrics::counter!("palaver_rtp_send_dropped_total", "worker" => w.clone()),
                record_dropped: metrics::counter!("palaver_recording_blocks_dropped_total", "worker" => w),
            },
        }
    }

    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut clock = TickClock::new(Instant::now() + TICK);
        loop {
            let now = Instant::now();
            let timeout = clock.deadline().saturating_duration_since(now);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != ErrorKind::Interrupted
            {
                tracing::error!(worker = self.index, error = %e, "media worker poll failed");
                break;
            }
            for ev in events.iter() {
                let token = ev.token();
                if token == WAKER {
                    continue;
                }
                self.drain_socket(token.0);
            }
            if !self.drain_commands() {
                break;
            }
            // Every tick due when this round began, each at its nominal
            // time (a late wake-up runs the ones it missed; see the `tick`
            // module and `TickClock::run_round`).
            let skipped = clock.skipped();
            clock.run_round(Instant::now(), |due| {
                let started = Instant::now();
                let late = started.saturating_duration_since(due);
                self.metrics.lateness.record(late.as_secs_f64());
                if late > TICK {
                    self.metrics.ticks_late.increment(1);
                }
                self.tick(due, started);
            });
            if clock.skipped() > skipped {
                self.metrics
                    .ticks_skipped
                    .increment(clock.skipped() - skipped);
            }
        }
        let _ = self.writer.try_send(WriterMsg::Stop);
    }

    /// One tick of every room: first the audio of all of them (the mixer
    /// tick, timed on its own), then their packets to the kernel (timed
    /// apart: on loopback a send costs several µs, most of it delivering
    /// into the receiver, and would otherwise hide the mixer's figure).
    fn tick(&mut self, now: Instant, started: Instant) {
        while let Ok((room, samples)) = self.returns.try_recv() {
            if let Some(e) = self.rooms.get_mut(&room) {
                e.room.recycle_record_block(samples);
            }
        }
        for entry in self.rooms.values_mut() {
            entry.room.handle_tick(now);
        }
        let mixed = Instant::now();
        self.metrics
            .tick
            .record(mixed.saturating_duration_since(started).as_secs_f64());
        for (id, entry) in self.rooms.iter_mut() {
            flush(
                entry,
                *id,
                &self.sockets,
                &mut self.send_buf,
                &self.writer,
                &self.metrics,
                &self.shared,
            );
        }
        self.metrics.tick_send.record(mixed.elapsed().as_secs_f64());
    }

    fn drain_socket(&mut self, token: usize) {
        let mut anchor: Option<ClockAnchor> = None;
        loop {
            let Some(Some(entry)) = self.sockets.get(token) else {
                return;
            };
            let read = match self.recv.recv(&entry.socket) {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // ICMP errors surface here on Linux; nothing to read.
                Err(_) => return,
            };
            let (room_id, participant, rtcp) = (entry.room, entry.participant, entry.rtcp);
            let Some(room) = self.rooms.get_mut(&room_id) else {
                return;
            };
            for i in 0..read.datagrams {
                let (d, bytes) = self.recv.get(i);
                // When the datagram reached the socket, not when we read it.
                let now = match d.stamp {
                    Some(stamp) => anchor
                        .get_or_insert_with(ClockAnchor::now)
                        .instant_of(stamp),
                    None => None,
                }
                .unwrap_or_else(|| {
                    self.metrics.unstamped.increment(1);
                    self.shared.unstamped[self.index].fetch_add(1, Ordering::Relaxed);
                    Instant::now()
                });
                if rtcp {
                    room.room.handle_rtcp(now, participant, bytes, d.from);
                } else {
                    room.room.handle_rtp(now, participant, bytes, d.from);
                }
            }
            flush(
                room,
                room_id,
                &self.sockets,
                &mut self.send_buf,
                &self.writer,
                &self.metrics,
                &self.shared,
            );
            if !read.maybe_more {
                return;
            }
        }
    }

    fn register(
        &mut self,
        socket: std::net::UdpSocket,
        room: RoomId,
        participant: ParticipantId,
        rtcp: bool,
    ) -> Option<usize> {
        let mut socket = UdpSocket::from_std(socket);
        if !arrival::enable_stamps(&socket) {
            // Works, less well: arrivals are then the read times.
            tracing::debug!("no kernel receive timestamps on an RTP socket");
        }
        let token = self.free_tokens.pop().unwrap_or_else(|| {
            self.sockets.push(None);
            self.sockets.len() - 1
        });
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut socket, Token(token), Interest::READABLE)
        {
            tracing::error!(error = %e, "registering an RTP socket");
            self.free_tokens.push(token);
            return None;
        }
        self.sockets[token] = Some(SocketEntry {
            socket,
            room,
            participant,
            rtcp,
        });
        Some(token)
    }

    fn unregister(&mut self, token: usize) {
        if let Some(slot) = self.sockets.get_mut(token)
            && let Some(mut e) = slot.take()
        {
            let _ = self.poll.registry().deregister(&mut e.socket);
            self.free_tokens.push(token);
        }
    }

    fn drop_legs(&mut self, legs: Legs) {
        self.unregister(legs.rtp);
        if let Some(r) = legs.rtcp {
            self.unregister(r);
        }
        self.shared.participants[self.index].fetch_sub(1, Ordering::Relaxed);
        // Sockets are closed now; the ports can be reused.
        if let Ok(mut pool) = self.shared.ports.lock() {
            pool.release(legs.port);
        }
    }

    /// Returns false on shutdown.
    fn drain_commands(&mut self) -> bool {
        loop {
            let cmd = match self.commands.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            };
            let now = Instant::now();
            match cmd {
                WorkerCommand::Shutdown => {
                    let ids: Vec<RoomId> = self.rooms.keys().copied().collect();
                    for id in ids {
                        self.close_room(id);
                    }
                    return false;
                }
                WorkerCommand::CreateRoom { id, config, events } => {
                    match MediaRoom::new(now, config) {
                        Ok(room) => {
                            self.rooms.insert(
                                id,
                                RoomEntry {
                                    room,
                                    events,
                                    legs: HashMap::new(),
                                },
                            );
                        }
                        Err(e) => {
                            let _ = events.try_send(RoomEvent::CommandFailed {
                                reason: e.to_string(),
                            });
                        }
                    }
                }
                WorkerCommand::CloseRoom { id } => self.close_room(id),
                WorkerCommand::AddParticipant {
                    room,
                    id,
                    spec,
                    ports,
                } => self.add_participant(now, room, id, spec, ports),
                WorkerCommand::RemoveParticipant { room, id } => {
                    let Some(entry) = self.rooms.get_mut(&room) else {
                        continue;
                    };
                    let mut legs = entry.legs.remove(&id);
                    // What it received since its last report.
                    if let (Some(l), Ok(stats)) = (legs.as_mut(), entry.room.stats(id)) {
                        count(&mut l.tally, &stats, &self.metrics);
                    }
                    let r = entry
                        .room
                        .handle_command(now, RoomCommand::RemoveParticipant { id });
                    if let Err(e) = r {
                        let _ = entry.events.try_send(RoomEvent::CommandFailed {
                            reason: e.to_string(),
                        });
                    }
                    self.flush_room(room);
                    if let Some(l) = legs {
                        self.drop_legs(l);
                    }
                }
                WorkerCommand::Room { room, cmd } => {
                    let Some(entry) = self.rooms.get_mut(&room) else {
                        continue;
                    };
                    if let Err(e) = entry.room.handle_command(now, cmd) {
                        let _ = entry.events.try_send(RoomEvent::CommandFailed {
                            reason: e.to_string(),
                        });
                    }
                    self.flush_room(room);
                }
                WorkerCommand::DtmfInfo {
                    room,
                    id,
                    digit,
                    duration,
                } => {
                    let Some(entry) = self.rooms.get_mut(&room) else {
                        continue;
                    };
                    if let Err(e) = entry.room.handle_dtmf_info(now, id, digit, duration) {
                        let _ = entry.events.try_send(RoomEvent::CommandFailed {
                            reason: e.to_string(),
                        });
                    }
                    self.flush_room(room);
                }
            }
        }
    }

    fn flush_room(&mut self, room: RoomId) {
        if let Some(entry) = self.rooms.get_mut(&room) {
            flush(
                entry,
                room,
                &self.sockets,
                &mut self.send_buf,
                &self.writer,
                &self.metrics,
                &self.shared,
            );
        }
    }

    fn add_participant(
        &mut self,
        now: Instant,
        room: RoomId,
        id: ParticipantId,
        spec: ParticipantSpec,
        ports: BoundPorts,
    ) {
        let port = ports.port;
        let index = self.index;
        let release = move |shared: &Shared| {
            shared.participants[index].fetch_sub(1, Ordering::Relaxed);
            if let Ok(mut pool) = shared.ports.lock() {
                pool.release(port);
            }
        };
        let Some(entry) = self.rooms.get_mut(&room) else {
            drop(ports);
            release(&self.shared);
            return;
        };
        if let Err(e) = entry
            .room
            .handle_command(now, RoomCommand::AddParticipant { id, spec })
        {
            let _ = entry.events.try_send(RoomEvent::CommandFailed {
                reason: e.to_string(),
            });
            drop(ports);
            release(&self.shared);
            return;
        }
        let Some(rtp) = self.register(ports.rtp, room, id, false) else {
            // Could not watch the socket: undo the add so nothing leaks.
            if let Some(entry) = self.rooms.get_mut(&room) {
                let _ = entry
                    .room
                    .handle_command(now, RoomCommand::RemoveParticipant { id });
                let _ = entry.events.try_send(RoomEvent::CommandFailed {
                    reason: "could not register the RTP socket".into(),
                });
            }
            release(&self.shared);
            return;
        };
        let rtcp = ports.rtcp.and_then(|s| self.register(s, room, id, true));
        if let Some(entry) = self.rooms.get_mut(&room) {
            entry.legs.insert(
                id,
                Legs {
                    rtp,
                    rtcp,
                    port,
                    tally: Tally::default(),
                },
            );
        }
        self.flush_room(room);
    }

    fn close_room(&mut self, id: RoomId) {
        let Some(mut entry) = self.rooms.remove(&id) else {
            return;
        };
        // Finish a recording in progress so its file is closed properly.
        let _ = entry
            .room
            .handle_command(Instant::now(), RoomCommand::StopRecording);
        flush(
            &mut entry,
            id,
            &self.sockets,
            &mut self.send_buf,
            &self.writer,
            &self.metrics,
            &self.shared,
        );
        for (_, legs) in entry.legs.drain() {
            self.drop_legs(legs);
        }
        self.shared.rooms[self.index].fetch_sub(1, Ordering::Relaxed);
        let _ = entry.events.try_send(RoomEvent::Closed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(received: u64, lost: i64, strangers: u64) -> ParticipantStats {
        ParticipantStats {
            packets_received: received,
            packets_lost: lost,
            strangers_dropped: strangers,
            ..ParticipantStats::default()
        }
    }

    #[test]
    fn tally_counts_each_packet_once_and_never_backwards() {
        let mut t = Tally::default();
        assert_eq!(t.advance(&stats(250, 3, 1)), (250, 3, 1));
        assert_eq!(t.advance(&stats(500, 3, 1)), (250, 0, 0));
        // Duplicates brought the RFC 3550 loss down: nothing counted…
        assert_eq!(t.advance(&stats(750, 1, 1)), (250, 0, 0));
        // …until it is above what was counted again.
        assert_eq!(t.advance(&stats(1000, 5, 4)), (250, 2, 3));
        // The final report at leave, with nothing new.
        assert_eq!(t.advance(&stats(1000, 5, 4)), (0, 0, 0));
    }
}
