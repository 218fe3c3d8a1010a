//! Drives a [`Pbx`] on tokio: the transports feed it, a timer wakes it, the
//! store receives its writes in order, and a [`PbxHandle`] lets the rest of
//! the server reload the directory or shut it down.
//!
//! One task owns the core (no lock around it); a second task applies store
//! writes one after another so a binding's upsert and delete never race.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use palaver_sip::Transport;
use palaver_sip_rt::{SipTransports, TransportConfig, TransportEvent};
use palaver_store::Store;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use crate::core::{Pbx, PbxConfig, StoreOp};
use crate::directory::Directory;
use crate::media::{MediaControl, MediaError, MediaRoomId};
use crate::registrar::Registration;
use palaver_media::room::{ParticipantId, ParticipantSpec, RoomCommand};
use palaver_media_rt::{EngineHandle, RoomEvent, RoomHandle};

/// Errors starting the PBX.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Transport(#[from] palaver_sip_rt::TransportError),
    #[error("loading from the store: {0}")]
    Store(#[from] palaver_store::StoreError),
}

/// What the PBX runtime needs.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub pbx: PbxConfig,
    pub transports: TransportConfig,
    /// The IP to write in Via/Contact when a listener is bound to a wildcard.
    pub advertise_ip: Option<std::net::IpAddr>,
    /// Prompts, uploads, recordings.
    pub conference: palaver_conference::ConferenceConfig,
    /// Base of links in e-mails (`http://host:port`).
    pub public_url: String,
}

enum Command {
    Reload,
    SetDirectory(Box<Directory>),
    Shutdown(oneshot::Sender<()>),
    Stats(oneshot::Sender<PbxStats>),
    Control {
        room: palaver_store::RoomId,
        command: palaver_conference::ControlCommand,
        reply: oneshot::Sender<Result<(), palaver_conference::ControlError>>,
    },
}

/// Why a control command did not reach its room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlFailure {
    #[error(transparent)]
    Refused(#[from] palaver_conference::ControlError),
    #[error("the PBX is busy; try again")]
    Busy,
    #[error("the PBX is not running")]
    Stopped,
}

/// A snapshot of the core's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PbxStats {
    pub calls: usize,
    pub registrations: usize,
    pub transactions: usize,
}

/// Talks to the running PBX.
#[derive(Clone)]
pub struct PbxHandle {
    commands: mpsc::Sender<Command>,
    local: HashMap<Transport, SocketAddr>,
    live: std::sync::Arc<crate::live::LiveHub>,
}

impl PbxHandle {
    /// The bound SIP address per transport.
    pub fn local_addr(&self, t: Transport) -> Option<SocketAddr> {
        self.local.get(&t).copied()
    }

    /// Re-reads lines, trunks, numbers and rooms from the store.
    pub async fn reload(&self) {
        let _ = self.commands.send(Command::Reload).await;
    }

    /// Asks for a reload without waiting (from synchronous code).
    pub fn request_reload(&self) {
        let _ = self.commands.try_send(Command::Reload);
    }

    /// Live rooms: snapshots and events for the web layer.
    pub fn live(&self) -> &std::sync::Arc<crate::live::LiveHub> {
        &self.live
    }

    /// Carries out a control command in a live room and returns its outcome.
    pub async fn control(
        &self,
        room: palaver_store::RoomId,
        command: palaver_conference::ControlCommand,
    ) -> Result<(), ControlFailure> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .try_send(Command::Control {
                room,
                command,
                reply: tx,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ControlFailure::Busy,
                mpsc::error::TrySendError::Closed(_) => ControlFailure::Stopped,
            })?;
        rx.await
            .map_err(|_| ControlFailure::Stopped)?
            .map_err(ControlFailure::Refused)
    }

    pub async fn stats(&self) -> Option<PbxStats> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Stats(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Stops accepting calls, hangs up every call with BYE, waits for the
    /// BYEs to be answered (at most a few seconds) and for every store write
    /// to be applied.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Loads the directory from the store.
pub async fn load_directory(store: &Store) -> Result<Directory, palaver_store::StoreError> {
    Ok(Directory::new(
        store.lines().await?,
        store.trunks().await?,
        store.numbers().await?,
        store.rooms().await?,
    ))
}

/// The secret that signs digest nonces, kept in the store so nonces handed
/// out before a restart stay valid after it.
async fn nonce_secret(store: &Store) -> Result<[u8; 32], palaver_store::StoreError> {
    if let Some(hex) = store.get_setting("sip.nonce_secret").await?
        && let Some(bytes) = decode_hex32(&hex)
    {
        return Ok(bytes);
    }
    let secret: [u8; 32] = rand::random();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    store.set_setting("sip.nonce_secret", &hex).await?;
    Ok(secret)
}

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hi = (chunk[0] as char).to_digit(16)?;
        let lo = (chunk[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// [`MediaControl`] over the media engine: rooms live on its worker
/// threads; each room's events are forwarded, tagged, to the core.
struct EngineMedia {
    engine: EngineHandle,
    rooms: HashMap<MediaRoomId, RoomHandle>,
    next: u64,
    events: mpsc::UnboundedSender<(MediaRoomId, RoomEvent)>,
}

fn media_err(e: palaver_media_rt::Error) -> MediaError {
    MediaError(e.to_string())
}

impl EngineMedia {
    fn room(&self, id: MediaRoomId) -> Option<&RoomHandle> {
        self.rooms.get(&id)
    }
}

impl MediaControl for EngineMedia {
    fn create_room(
        &mut self,
        sample_rate: u32,
        max_talkers: usize,
    ) -> Result<MediaRoomId, MediaError> {
        let mut settings = palaver_media_rt::RoomSettings::default();
        settings.media.sample_rate = sample_rate;
        settings.media.max_talkers = max_talkers;
        let (handle, mut rx) = self.engine.create_room(settings).map_err(media_err)?;
        self.next += 1;
        let id = MediaRoomId(self.next);
        let tx = self.events.clone();
        tokio::spawn(async move {
            // Runs until every sender is gone: the recording writer may
            // still report a finished file after the room is closed.
            while let Some(ev) = rx.recv().await {
                if tx.send((id, ev)).is_err() {
                    break;
                }
            }
        });
        self.rooms.insert(id, handle);
        Ok(id)
    }

    fn add_participant(
        &mut self,
        room: MediaRoomId,
        spec: ParticipantSpec,
    ) -> Result<(ParticipantId, SocketAddr), MediaError> {
        let r = self
            .room(room)
            .ok_or_else(|| MediaError("no such media room".into()))?;
        let info = r.add_participant(spec).map_err(media_err)?;
        Ok((info.id, info.local_rtp))
    }

    fn remove_participant(&mut self, room: MediaRoomId, id: ParticipantId) {
        if let Some(r) = self.room(room)
            && let Err(e) = r.remove_participant(id)
        {
            warn!(error = %e, "removing a participant");
        }
    }

    fn command(&mut self, room: MediaRoomId, cmd: RoomCommand) {
        if let Some(r) = self.room(room)
            && let Err(e) = r.command(cmd)
        {
            warn!(error = %e, "media command failed");
        }
    }

    fn dtmf_info(&mut self, room: MediaRoomId, id: ParticipantId, digit: char, duration: Duration) {
        if let Some(r) = self.room(room)
            && let Err(e) = r.dtmf_info(id, digit, duration)
        {
            warn!(error = %e, "DTMF from INFO not delivered");
        }
    }

    fn play_file(
        &mut self,
        room: MediaRoomId,
        to: Option<ParticipantId>,
        path: &std::path::Path,
        playback: u64,
    ) {
        if let Some(r) = self.room(room)
            && let Err(e) = r.play_file(to, path, playback)
        {
            warn!(error = %e, path = %path.display(), "playing a prompt failed");
        }
    }

    fn music_on_hold(
        &mut self,
        room: MediaRoomId,
        id: ParticipantId,
        path: Option<&std::path::Path>,
    ) {
        if let Some(r) = self.room(room)
            && let Err(e) = r.music_on_hold(id, path)
        {
            warn!(error = %e, "music on hold failed");
        }
    }

    fn start_recording(
        &mut self,
        room: MediaRoomId,
        path: std::path::PathBuf,
    ) -> Result<u64, MediaError> {
        let r = self
            .room(room)
            .ok_or_else(|| MediaError("no such media room".into()))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| MediaError(format!("creating {}: {e}", dir.display())))?;
        }
        r.start_recording(path).map_err(media_err)
    }

    fn stop_recording(&mut self, room: MediaRoomId) {
        if let Some(r) = self.room(room) {
            let _ = r.stop_recording();
        }
    }

    fn close_room(&mut self, room: MediaRoomId) {
        if let Some(r) = self.rooms.remove(&room) {
            let _ = r.close();
        }
    }
}

/// Binds the transports, loads the store and starts the core task.
pub async fn start(
    mut config: RuntimeConfig,
    store: Store,
    engine: EngineHandle,
) -> Result<PbxHandle, RuntimeError> {
    let (transports, mut inbound) = SipTransports::bind(&config.transports).await?;
    let mut local = HashMap::new();
    for t in [Transport::Udp, Transport::Tcp, Transport::Tls] {
        if let Some(mut a) = transports.local_addr(t) {
            if a.ip().is_unspecified() {
                a.set_ip(
                    config
                        .advertise_ip
                        .unwrap_or_else(|| std::net::IpAddr::from([127, 0, 0, 1])),
                );
            }
            local.insert(t, a);
        }
    }
    config.pbx.local = local.clone();

    let dir = load_directory(&store).await?;
    let now_ms = palaver_store::now_ms();
    let regs: Vec<Registration> = store
        .all_bindings(now_ms)
        .await?
        .iter()
        .filter_map(Registration::from_binding)
        .collect();
    info!(
        lines = dir.lines().count(),
        registrations = regs.len(),
        "PBX directory loaded"
    );
    let secret = nonce_secret(&store).await?;
    let (media_tx, mut media_rx) = mpsc::unbounded_channel::<(MediaRoomId, RoomEvent)>();
    let media = EngineMedia {
        engine,
        rooms: HashMap::new(),
        next: 0,
        events: media_tx,
    };
    let conference = palaver_conference::Conference::new(
        config.conference.clone(),
        palaver_conference::WallClock::system(),
        Box::new(palaver_media::source::PromptCache::new()),
    );
    let mut pbx = Pbx::new(
        config.pbx.clone(),
        dir,
        secret,
        Box::new(media),
        conference,
        Instant::now(),
        now_ms,
    );
    let live = std::sync::Arc::new(crate::live::LiveHub::default());
    let hub = live.clone();
    pbx.restore_bindings(regs);

    let (store_tx, store_rx) = mpsc::unbounded_channel::<StoreWrite>();
    tokio::spawn(store_writer(
        store.clone(),
        store_rx,
        config.public_url.clone(),
    ));

    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(64);
    let reload_tx = cmd_tx.clone();
    tokio::spawn(async move {
        let mut shutdown: Option<(oneshot::Sender<()>, tokio::time::Instant)> = None;
        loop {
            let deadline = pbx
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                ev = inbound.recv() => {
                    let Some(ev) = ev else { break };
                    let now = Instant::now();
                    handle_transport_event(&mut pbx, now, ev);
                    // Take whatever else is already queued before flushing.
                    for _ in 0..256 {
                        match inbound.try_recv() {
                            Ok(ev) => handle_transport_event(&mut pbx, now, ev),
                            Err(_) => break,
                        }
                    }
                }
                ev = media_rx.recv() => {
                    if let Some((room, ev)) = ev {
                        pbx.handle_media_event(Instant::now(), room, ev);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    pbx.handle_timeout(Instant::now());
                }
                cmd = cmd_rx.recv() => {
                    match cmd {
                        None => break,
                        Some(Command::Reload) => {
                            let store = store.clone();
                            let tx = reload_tx.clone();
                            tokio::spawn(async move {
                                match load_directory(&store).await {
                                    Ok(d) => { let _ = tx.send(Command::SetDirectory(Box::new(d))).await; }
                                    Err(e) => error!(error = %e, "reloading the directory failed"),
                                }
                            });
                        }
                        Some(Command::SetDirectory(d)) => pbx.set_directory(Instant::now(), *d),
                        Some(Command::Control { room, command, reply }) => {
                            let _ = reply.send(pbx.control_room(Instant::now(), room, command));
                        }
                        Some(Command::Stats(tx)) => {
                            let _ = tx.send(PbxStats {
                                calls: pbx.call_count(),
                                registrations: pbx.registration_count(Instant::now()),
                                transactions: pbx.transaction_count(),
                            });
                        }
                        Some(Command::Shutdown(tx)) => {
                            info!(calls = pbx.call_count(), "shutting down: hanging up calls");
                            pbx.begin_shutdown(Instant::now());
                            shutdown = Some((tx, tokio::time::Instant::now() + Duration::from_secs(5)));
                        }
                    }
                }
            }
            while let Some(t) = pbx.poll_transmit() {
                transports.send(t);
            }
            while let Some(op) = pbx.poll_store() {
                let _ = store_tx.send(StoreWrite::Op(op));
            }
            publish_room_events(&mut pbx, &hub);
            if let Some((_, until)) = &shutdown {
                // Wait for the BYEs to be answered (their transactions end),
                // but not forever.
                let calls_done = pbx.call_count() == 0;
                if (calls_done && pbx.is_idle_enough()) || tokio::time::Instant::now() >= *until {
                    let (done_tx, done_rx) = oneshot::channel();
                    let _ = store_tx.send(StoreWrite::Flush(done_tx));
                    let _ = done_rx.await;
                    transports.shutdown();
                    if let Some((tx, _)) = shutdown.take() {
                        let _ = tx.send(());
                    }
                    break;
                }
            }
        }
    });
    Ok(PbxHandle {
        commands: cmd_tx,
        local,
        live,
    })
}

/// Hands the conference's new events, with a fresh snapshot of each room
/// they concern, to the web layer's hub.
fn publish_room_events(pbx: &mut Pbx, hub: &crate::live::LiveHub) {
    let mut by_room: Vec<(palaver_store::RoomId, Vec<palaver_conference::RoomEvent>)> = Vec::new();
    while let Some(ev) = pbx.poll_room_event() {
        match by_room.iter_mut().find(|(r, _)| *r == ev.room) {
            Some((_, v)) => v.push(ev),
            None => by_room.push((ev.room, vec![ev])),
        }
    }
    for (room, events) in by_room {
        hub.publish(pbx.room_snapshot(room), events);
    }
}

fn handle_transport_event(pbx: &mut Pbx, now: Instant, ev: TransportEvent) {
    match ev {
        TransportEvent::Message(m) => {
            let m = *m;
            pbx.handle_inbound(now, m.peer, m.message);
        }
        TransportEvent::Closed(_) => {}
    }
}

enum StoreWrite {
    Op(StoreOp),
    Flush(oneshot::Sender<()>),
}

async fn store_writer(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<StoreWrite>,
    public_url: String,
) {
    // Conference recording ids → store rows (writes arrive in order, so a
    // recording's row exists before it is finished or linked).
    let mut recordings: HashMap<(palaver_store::RoomId, u64), palaver_store::RecordingId> =
        HashMap::new();
    // Call records are written in batches: a busy PBX ends hundreds of calls
    // a second, and one commit (one fsync) each would make the disk the
    // bottleneck. Other writes keep their order relative to the batch.
    let mut cdrs: Vec<palaver_store::NewCdr> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut writes = vec![first];
        while writes.len() < 1024 {
            match rx.try_recv() {
                Ok(w) => writes.push(w),
                Err(_) => break,
            }
        }
        for w in writes {
            if let StoreWrite::Op(StoreOp::InsertCdr(c)) = w {
                cdrs.push(c);
                continue;
            }
            flush_cdrs(&store, &mut cdrs).await;
            apply_write(&store, w, &mut recordings, &public_url).await;
        }
        flush_cdrs(&store, &mut cdrs).await;
    }
}

async fn flush_cdrs(store: &Store, cdrs: &mut Vec<palaver_store::NewCdr>) {
    if cdrs.is_empty() {
        return;
    }
    match store.insert_cdrs(cdrs).await {
        Ok((_, 0)) => {}
        Ok((_, skipped)) => warn!(
            skipped,
            "call records with inconsistent times were not stored"
        ),
        Err(e) => warn!(error = %e, records = cdrs.len(), "storing call records failed"),
    }
    cdrs.clear();
}

async fn apply_write(
    store: &Store,
    w: StoreWrite,
    recordings: &mut HashMap<(palaver_store::RoomId, u64), palaver_store::RecordingId>,
    public_url: &str,
) {
    {
        match w {
            StoreWrite::Op(op) => {
                let res = match &op {
                    StoreOp::UpsertBinding(b) => store.upsert_binding(b).await.map(|_| ()),
                    StoreOp::DeleteBinding { line, contact } => {
                        store.delete_binding(*line, contact).await.map(|_| ())
                    }
                    StoreOp::InsertCdr(c) => store.insert_cdr(c).await.map(|_| ()),
                    StoreOp::CreateRecording {
                        room,
                        conference_id,
                        new,
                    } => store.create_recording(new).await.map(|r| {
                        recordings.insert((*room, *conference_id), r.id);
                    }),
                    StoreOp::FinishRecording {
                        room,
                        conference_id,
                        path,
                        ended_at,
                        duration_ms,
                        participants,
                    } => match recordings.get(&(*room, *conference_id)) {
                        Some(id) => {
                            let size = tokio::fs::metadata(path)
                                .await
                                .map(|m| m.len() as i64)
                                .unwrap_or(0);
                            store
                                .finish_recording(
                                    *id,
                                    &palaver_store::FinishedRecording {
                                        ended_at: *ended_at,
                                        duration_ms: *duration_ms,
                                        size_bytes: size,
                                        participants: participants.clone(),
                                    },
                                )
                                .await
                                .map(|_| ())
                        }
                        None => Ok(()),
                    },
                    StoreOp::Report(report) => {
                        let room = report.room;
                        let base = public_url.trim_end_matches('/');
                        let report = crate::answered::with_links((**report).clone(), |conf_id| {
                            recordings
                                .get(&(room, conf_id))
                                .map(|id| format!("{base}/recordings/{}/audio", id.0))
                        });
                        match report.to_mail() {
                            Some(mail) => store
                                .enqueue_mail(&mail, palaver_store::now_ms())
                                .await
                                .map(|_| ()),
                            None => Ok(()),
                        }
                    }
                };
                if let Err(e) = res {
                    warn!(error = %e, ?op, "store write failed");
                }
            }
            StoreWrite::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}
