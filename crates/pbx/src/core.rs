//! The PBX core, sans-IO: one struct that owns the transaction layer, the
//! registrar, the auth guard and every call, and turns SIP in into SIP out.
//!
//! The runtime ([`crate::runtime`]) feeds it parsed messages and time
//! ([`Pbx::handle_inbound`], [`Pbx::handle_timeout`]) and drains what comes
//! out: bytes to send ([`Pbx::poll_transmit`]), store writes
//! ([`Pbx::poll_store`]) and the next deadline ([`Pbx::poll_timeout`]).
//! Tests drive it with synthetic time and fake peers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use palaver_sip::{
    Contact, HeaderName, Message, Method, ParseError, Peer, Request, Response, SipMessage,
    StatusCode, TransactionConfig, TransactionLayer, Transmit, Transport, TxEvent, TxKey, Uri,
};
use palaver_store::{LineId, NewCdr};
use tracing::{debug, info, warn};

use crate::call::{Call, CallKey, ClientRole};
use crate::directory::Directory;
use crate::guard::{AuthGuard, AuthOutcome, GuardConfig};
use crate::media::{MediaControl, MediaRoomId};
use crate::registrar::{BindingChange, Registrar, Registration};

/// Settings of the core.
#[derive(Debug, Clone)]
pub struct PbxConfig {
    pub guard: GuardConfig,
    /// Shortest registration we accept (`423` below it).
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_bindings_per_line: usize,
    /// How long a call may ring before it is given up (`480`).
    pub no_answer_timeout: Duration,
    /// Product name for `Server` and `User-Agent`.
    pub server_name: String,
    /// Our address per transport, as written in Via and Contact.
    pub local: HashMap<Transport, SocketAddr>,
    /// The address written in SDP (where our RTP sockets are reached).
    pub media_ip: std::net::IpAddr,
    /// Codecs we offer and accept, in our order of preference.
    pub codecs: palaver_sdp::LocalCapabilities,
    /// What a caller hears while the other side holds the call.
    pub music_on_hold: Option<std::path::PathBuf>,
    /// Mixing rate of conference rooms.
    pub conference_rate: u32,
    /// Talkers mixed at once in a conference room.
    pub conference_talkers: usize,
    /// A number that answers, plays one second of tone and hangs up (load
    /// tests, line checks); reachable from lines and trunk addresses.
    pub tone_test_number: Option<String>,
}

impl Default for PbxConfig {
    fn default() -> Self {
        PbxConfig {
            guard: GuardConfig::default(),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_bindings_per_line: 10,
            no_answer_timeout: Duration::from_secs(60),
            server_name: format!("Palaver/{}", env!("CARGO_PKG_VERSION")),
            local: HashMap::new(),
            media_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            codecs: palaver_sdp::LocalCapabilities::default(),
            music_on_hold: None,
            conference_rate: 8000,
            conference_talkers: 4,
            tone_test_number: None,
        }
    }
}

/// A write the runtime must make to the store.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreOp {
    UpsertBinding(palaver_store::Binding),
    DeleteBinding {
        line: LineId,
        contact: String,
    },
    InsertCdr(NewCdr),
    /// A conference recording started; `conference_id` is the conference
    /// layer's id for it, which `FinishRecording` and reports refer to.
    CreateRecording {
        room: palaver_store::RoomId,
        conference_id: u64,
        new: palaver_store::NewRecording,
    },
    FinishRecording {
        room: palaver_store::RoomId,
        conference_id: u64,
        path: std::path::PathBuf,
        ended_at: i64,
        duration_ms: i64,
        participants: String,
    },
    /// An end-of-conference report to e-mail (when the room has an address).
    Report(Box<palaver_conference::ConferenceReport>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum CoreTimer {
    Housekeeping,
    NoAnswer(CallKey),
}

/// What the methods we implement are, for `Allow`.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, INFO";
/// What bodies we understand, for `Accept`.
pub const ACCEPT: &str = "application/sdp, application/dtmf-relay, application/dtmf";

/// The PBX core. See the module docs.
pub struct Pbx {
    pub(crate) config: PbxConfig,
    pub(crate) layer: TransactionLayer,
    pub(crate) dir: Directory,
    pub(crate) registrar: Registrar,
    pub(crate) guard: AuthGuard,
    /// Instant ↔ Unix-ms anchor: wall time = base_ms + (now − base).
    base: (Instant, i64),
    pub(crate) calls: HashMap<CallKey, Call>,
    pub(crate) next_call: u64,
    /// Server transactions that belong to a call.
    pub(crate) server_owner: HashMap<TxKey, CallKey>,
    /// Client transactions that belong to a call, and why we sent them.
    pub(crate) client_owner: HashMap<TxKey, (CallKey, ClientRole)>,
    /// (Call-ID, our tag) → call, for in-dialog requests.
    pub(crate) dialogs: HashMap<(String, String), CallKey>,
    store_ops: VecDeque<StoreOp>,
    timers: BinaryHeap<Reverse<(Instant, CoreTimer)>>,
    pub(crate) accepting: bool,
    pub(crate) media: Box<dyn MediaControl>,
    /// Which call owns a media room.
    pub(crate) media_rooms: HashMap<MediaRoomId, CallKey>,
    pub(crate) next_session_id: u64,
    pub(crate) conference: palaver_conference::Conference,
    pub(crate) answered: crate::answered::AnsweredState,
    pub(crate) room_events: VecDeque<palaver_conference::RoomEvent>,
}

impl Pbx {
    /// A core starting at `now`, whose wall clock reads `now_ms` (Unix ms).
    pub fn new(
        config: PbxConfig,
        dir: Directory,
        secret: [u8; 32],
        media: Box<dyn MediaControl>,
        conference: palaver_conference::Conference,
        now: Instant,
        now_ms: i64,
    ) -> Pbx {
        let layer = TransactionLayer::new(TransactionConfig {
            server_name: config.server_name.clone(),
            ..TransactionConfig::default()
        });
        let guard = AuthGuard::new(config.guard.clone(), secret);
        let registrar = Registrar::new(config.max_bindings_per_line);
        let mut timers = BinaryHeap::new();
        timers.push(Reverse((
            now + Duration::from_secs(5),
            CoreTimer::Housekeeping,
        )));
        Pbx {
            config,
            layer,
            dir,
            registrar,
            guard,
            base: (now, now_ms),
            calls: HashMap::new(),
            next_call: 1,
            server_owner: HashMap::new(),
            client_owner: HashMap::new(),
            dialogs: HashMap::new(),
            store_ops: VecDeque::new(),
            timers,
            accepting: true,
            media,
            media_rooms: HashMap::new(),
            next_session_id: (now_ms as u64) << 16,
            conference,
            answered: Default::default(),
            room_events: VecDeque::new(),
        }
    }

    /// Wall-clock Unix milliseconds at `now`.
    pub fn wall_ms(&self, now: Instant) -> i64 {
        self.base.1 + now.saturating_duration_since(self.base.0).as_millis() as i64
    }

    /// Replaces the directory (after an admin change); live conferences
    /// pick up their rooms' new settings.
    pub fn set_directory(&mut self, now: Instant, dir: Directory) {
        self.registrar.retain_lines(|l| dir.line(l).is_some());
        let live: Vec<palaver_store::RoomId> = self.conference.live_rooms().collect();
        for r in live {
            if let Some(room) = dir.room(r) {
                self.conference.handle_room_update(now, room);
            }
        }
        self.dir = dir;
        self.conference_drain(now);
    }

    pub(crate) fn conference_drain(&mut self, now: Instant) {
        self.drain_conference(now);
    }

    /// A command from the control page or the API for a live room.
    pub fn control_room(
        &mut self,
        now: Instant,
        room: palaver_store::RoomId,
        cmd: palaver_conference::ControlCommand,
    ) -> Result<(), palaver_conference::ControlError> {
        let r = self.conference.handle_control(now, room, cmd);
        self.drain_conference(now);
        self.process_events(now);
        r
    }

    /// The live state of a room.
    pub fn room_snapshot(&self, room: palaver_store::RoomId) -> palaver_conference::RoomSnapshot {
        self.conference.snapshot(room)
    }

    /// The next room event for the web layer.
    pub fn poll_room_event(&mut self) -> Option<palaver_conference::RoomEvent> {
        self.room_events.pop_front()
    }

    /// Callers in rooms and on the tone test.
    pub fn answered_count(&self) -> usize {
        self.answered.calls.len()
    }

    pub fn directory(&self) -> &Directory {
        &self.dir
    }

    /// Restores registrations loaded from the store at start.
    pub fn restore_bindings(&mut self, regs: Vec<Registration>) {
        self.registrar.restore(regs);
    }

    /// Live registrations (for metrics and tests).
    pub fn registration_count(&self, now: Instant) -> usize {
        self.registrar.count(self.wall_ms(now))
    }

    /// Calls in progress.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Live SIP transactions.
    pub fn transaction_count(&self) -> usize {
        self.layer.len()
    }

    /// Whether new calls are still accepted.
    pub fn is_accepting(&self) -> bool {
        self.accepting
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.layer.poll_transmit()
    }

    pub fn poll_store(&mut self) -> Option<StoreOp> {
        self.store_ops.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.timers.peek().map(|Reverse((t, _))| *t),
            self.layer.poll_timeout(),
            self.conference.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(crate) fn schedule(&mut self, at: Instant, t: CoreTimer) {
        self.timers.push(Reverse((at, t)));
    }

    pub(crate) fn store(&mut self, op: StoreOp) {
        self.store_ops.push_back(op);
    }

    /// One message from the transports.
    pub fn handle_inbound(
        &mut self,
        now: Instant,
        peer: Peer,
        message: Result<Message, ParseError>,
    ) {
        match message {
            Ok(m) => {
                if let Message::Request(r) = &m {
                    metrics::counter!("palaver_sip_requests_total", "method" => r.method.as_str().to_owned())
                        .increment(1);
                }
                self.layer.handle_message(now, peer, m);
            }
            Err(e) => self.layer.reject_malformed(peer, e),
        }
        self.process_events(now);
    }

    /// An event from a media room.
    pub fn handle_media_event(
        &mut self,
        now: Instant,
        room: MediaRoomId,
        ev: palaver_media_rt::RoomEvent,
    ) {
        if let Some(&ck) = self.media_rooms.get(&room) {
            if let palaver_media_rt::RoomEvent::Media(m) = ev {
                self.on_call_media_event(now, ck, m);
            }
        } else {
            self.on_answered_media_event(now, room, ev);
        }
        self.process_events(now);
    }

    /// Fires due deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.process_events(now);
        self.conference.handle_timeout(now);
        self.drain_conference(now);
        self.process_events(now);
        while let Some(Reverse((at, t))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match t {
                CoreTimer::Housekeeping => {
                    self.housekeeping(now);
                    self.schedule(now + Duration::from_secs(5), CoreTimer::Housekeeping);
                }
                CoreTimer::NoAnswer(key) => self.no_answer(now, key),
            }
            self.process_events(now);
        }
    }

    /// Stops taking calls and hangs up every call (SIGTERM).
    pub fn begin_shutdown(&mut self, now: Instant) {
        self.accepting = false;
        let keys: Vec<CallKey> = self.calls.keys().copied().collect();
        for k in keys {
            self.hang_up(
                now,
                k,
                StatusCode::SERVICE_UNAVAILABLE,
                "Server shutting down",
            );
        }
        self.hang_up_all_answered(now);
        self.process_events(now);
    }

    /// Whether shutdown may finish: no calls, and every BYE or CANCEL we
    /// sent has been answered (or timed out).
    pub fn is_idle_enough(&self) -> bool {
        self.calls.is_empty() && self.answered.calls.is_empty() && self.client_owner.is_empty()
    }

    fn housekeeping(&mut self, now: Instant) {
        let now_ms = self.wall_ms(now);
        for ch in self.registrar.expire(now_ms) {
            self.persist(ch);
        }
        self.guard.sweep(now);
        metrics::gauge!("palaver_registrations").set(self.registrar.count(now_ms) as f64);
        metrics::gauge!("palaver_calls_active")
            .set((self.calls.len() + self.answered.calls.len()) as f64);
        metrics::gauge!("palaver_rooms_active").set(self.conference.live_rooms().count() as f64);
        metrics::gauge!("palaver_room_participants").set(
            self.answered
                .calls
                .values()
                .filter(|c| matches!(c.purpose, crate::answered::Purpose::Room(_)))
                .count() as f64,
        );
        metrics::gauge!("palaver_sip_transactions").set(self.layer.len() as f64);
    }

    pub(crate) fn persist(&mut self, ch: BindingChange) {
        match ch {
            BindingChange::Upsert(r) => self.store(StoreOp::UpsertBinding(r.to_binding())),
            BindingChange::Remove { line, contact } => {
                self.store(StoreOp::DeleteBinding { line, contact })
            }
        }
    }

    pub(crate) fn process_events(&mut self, now: Instant) {
        while let Some(ev) = self.layer.poll_event() {
            match ev {
                TxEvent::Request { key, request, peer } => self.on_request(now, key, request, peer),
                TxEvent::Ack { request, .. } => self.on_ack(now, request),
                TxEvent::Cancelled { invite, .. } => self.on_cancelled(now, invite),
                TxEvent::Response { key, response } => self.on_response(now, key, response),
                TxEvent::Timeout { key } => self.on_client_timeout(now, key),
                TxEvent::AckTimeout { key } => self.on_ack_timeout(now, key),
                TxEvent::Malformed { peer, error } => {
                    debug!(%peer, reason = %error.reason, "malformed SIP message");
                    metrics::counter!("palaver_sip_malformed_total").increment(1);
                }
            }
        }
    }

    /// Sends a response in a server transaction, counting it.
    pub(crate) fn respond(&mut self, now: Instant, key: TxKey, resp: Response) {
        metrics::counter!("palaver_sip_responses_total", "status" => resp.status.0.to_string())
            .increment(1);
        if let Err(e) = self.layer.send_response(now, key, resp) {
            debug!(?key, error = %e, "response not sent");
        }
    }

    /// Refuses a request for a reason about its media.
    pub(crate) fn refuse(
        &mut self,
        now: Instant,
        key: TxKey,
        req: &Request,
        r: crate::media::Refusal,
    ) {
        self.reply(now, key, req, r.status, Some(&r.reason));
    }

    /// A response with a To tag (so it can be matched by the client).
    pub(crate) fn reply(
        &mut self,
        now: Instant,
        key: TxKey,
        req: &Request,
        status: StatusCode,
        reason: Option<&str>,
    ) {
        let mut resp = Response::for_request(req, status);
        if req.to_tag().is_none() {
            resp.set_to_tag(&palaver_sip::new_tag());
        }
        if let Some(r) = reason {
            resp = resp.with_reason(r);
        }
        self.respond(now, key, resp);
    }

    fn on_request(&mut self, now: Instant, key: TxKey, req: Request, peer: Peer) {
        // In-dialog requests first (they carry a To tag).
        if req.to_tag().is_some() {
            self.on_in_dialog_request(now, key, req, peer);
            return;
        }
        match req.method {
            Method::Register => self.on_register(now, key, req, peer),
            Method::Options => self.on_options(now, key, req),
            Method::Invite => self.on_invite(now, key, req, peer),
            Method::Bye | Method::Info => {
                self.reply(now, key, &req, StatusCode::CALL_DOES_NOT_EXIST, None);
            }
            _ => {
                let mut r = Response::for_request(&req, StatusCode::METHOD_NOT_ALLOWED);
                r.headers.push(HeaderName::Allow, ALLOW);
                self.respond(now, key, r);
            }
        }
    }

    fn on_options(&mut self, now: Instant, key: TxKey, req: Request) {
        let mut r = Response::for_request(&req, StatusCode::OK);
        r.set_to_tag(&palaver_sip::new_tag());
        r.headers.push(HeaderName::Allow, ALLOW);
        r.headers.push(HeaderName::Accept, ACCEPT);
        r.headers.push(
            HeaderName::Other("Accept-Language".into()),
            "en, fr, de, es, it, nl",
        );
        // We implement no option tags; an empty list is the honest answer.
        r.headers.push(HeaderName::Supported, "");
        self.respond(now, key, r);
    }

    fn challenge(&mut self, now: Instant, key: TxKey, req: &Request, proxy: bool, stale: bool) {
        let status = if proxy {
            StatusCode::PROXY_AUTH_REQUIRED
        } else {
            StatusCode::UNAUTHORIZED
        };
        let header = if proxy {
            HeaderName::ProxyAuthenticate
        } else {
            HeaderName::WwwAuthenticate
        };
        let mut r = Response::for_request(req, status);
        r.set_to_tag(&palaver_sip::new_tag());
        for c in self.guard.challenges(self.wall_ms(now) as u64, stale) {
            r.headers.push(header.clone(), c);
        }
        self.respond(now, key, r);
    }

    /// Runs the auth guard for `req`; answers the request itself unless the
    /// caller is authenticated.
    pub(crate) fn authenticate(
        &mut self,
        now: Instant,
        key: TxKey,
        req: &Request,
        peer: Peer,
        proxy: bool,
    ) -> Option<LineId> {
        let header = if proxy {
            HeaderName::ProxyAuthorization
        } else {
            HeaderName::Authorization
        };
        // Several credentials may be present (one per realm); use ours.
        let realm = self.guard.realm().to_owned();
        let creds = req
            .headers
            .get_all(&header)
            .find(|v| v.contains(&format!("realm=\"{realm}\"")))
            .or_else(|| req.headers.get(&header))
            .map(str::to_owned);
        let now_ms = self.wall_ms(now) as u64;
        let outcome = self.guard.check(
            creds.as_deref(),
            req.method.as_str(),
            peer.addr.ip(),
            &self.dir,
            now,
            now_ms,
        );
        match outcome {
            AuthOutcome::Authenticated(line) => Some(line),
            AuthOutcome::Challenge { stale } => {
                self.challenge(now, key, req, proxy, stale);
                None
            }
            AuthOutcome::Denied(reason) => {
                self.reply(now, key, req, StatusCode::FORBIDDEN, Some(reason));
                None
            }
        }
    }

    fn on_register(&mut self, now: Instant, key: TxKey, req: Request, peer: Peer) {
        let Some(line_id) = self.authenticate(now, key, &req, peer, false) else {
            return;
        };
        let Some(line) = self.dir.line(line_id).cloned() else {
            self.reply(now, key, &req, StatusCode::FORBIDDEN, None);
            return;
        };
        // The address of record must be the authenticated line's.
        let aor_user = req.to_header().and_then(|t| t.uri.user.clone());
        if aor_user.as_deref() != Some(line.extension.as_str()) {
            self.reply(
                now,
                key,
                &req,
                StatusCode::FORBIDDEN,
                Some("Forbidden (To does not match the authenticated line)"),
            );
            return;
        }
        let now_ms = self.wall_ms(now);
        let contacts = req.contacts();
        let header_expires = req.expires();
        let call_id = req.call_id().unwrap_or_default().to_owned();
        let cseq = req.cseq().map(|c| c.seq).unwrap_or(0);
        let user_agent = req
            .header(&HeaderName::UserAgent)
            .unwrap_or_default()
            .to_owned();

        if contacts.iter().any(|c| matches!(c, Contact::Star)) {
            if contacts.len() != 1 || header_expires != Some(0) {
                self.reply(
                    now,
                    key,
                    &req,
                    StatusCode::BAD_REQUEST,
                    Some("Contact * needs Expires: 0 and no other contact"),
                );
                return;
            }
            for ch in self.registrar.unbind_all(line_id) {
                self.persist(ch);
            }
            info!(line = %line.extension, "unregistered all contacts");
        }

        // Check every expiry before changing anything (§10.3 step 6/7).
        for c in &contacts {
            if let Contact::Addr(_) = c {
                let e = c
                    .expires()
                    .or(header_expires)
                    .unwrap_or(self.config.default_expires);
                if e != 0 && e < self.config.min_expires {
                    let mut r = Response::for_request(&req, StatusCode::INTERVAL_TOO_BRIEF);
                    r.set_to_tag(&palaver_sip::new_tag());
                    r.headers
                        .push(HeaderName::MinExpires, self.config.min_expires.to_string());
                    self.respond(now, key, r);
                    return;
                }
            }
        }
        for c in &contacts {
            let Contact::Addr(na) = c else { continue };
            let e = c
                .expires()
                .or(header_expires)
                .unwrap_or(self.config.default_expires);
            if e == 0 {
                if let Some(ch) = self.registrar.unbind(line_id, &na.uri) {
                    self.persist(ch);
                    info!(line = %line.extension, contact = %na.uri, "unregistered");
                }
                continue;
            }
            let e = e.min(self.config.max_expires);
            let instance = na.param("+sip.instance").and_then(|p| p.value.clone());
            let reg = Registration {
                line: line_id,
                contact: na.uri.clone(),
                peer,
                expires_at: now_ms + i64::from(e) * 1000,
                call_id: call_id.clone(),
                cseq,
                user_agent: user_agent.clone(),
                instance,
            };
            if let Some(changes) = self.registrar.bind(reg, now_ms) {
                for ch in changes {
                    self.persist(ch);
                }
                debug!(line = %line.extension, contact = %na.uri, expires = e, "registered");
            }
        }

        let mut r = Response::for_request(&req, StatusCode::OK);
        r.set_to_tag(&palaver_sip::new_tag());
        for reg in self.registrar.contacts(line_id, now_ms) {
            let left = ((reg.expires_at - now_ms) / 1000).max(0);
            r.headers.push(
                HeaderName::Contact,
                format!("<{}>;expires={left}", reg.contact),
            );
        }
        r.headers.push(HeaderName::Date, httpdate(now_ms));
        self.respond(now, key, r);
    }

    /// Our Via sent-by and Contact host for a transport.
    pub(crate) fn local_addr(&self, t: Transport) -> SocketAddr {
        local_addr_in(&self.config.local, t)
    }

    /// Our Contact URI for a transport.
    pub(crate) fn contact_uri(&self, user: Option<&str>, t: Transport) -> Uri {
        contact_uri_in(&self.config.local, user, t)
    }

    pub(crate) fn warn_unknown(&self, what: &str) {
        warn!("{what}");
    }
}

/// Our address for a transport (UDP's when that transport has none).
pub(crate) fn local_addr_in(local: &HashMap<Transport, SocketAddr>, t: Transport) -> SocketAddr {
    local
        .get(&t)
        .or_else(|| local.get(&Transport::Udp))
        .copied()
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5060)))
}

/// Our Contact URI for a transport; a free function so callers can use it
/// while they hold a call mutably.
pub(crate) fn contact_uri_in(
    local: &HashMap<Transport, SocketAddr>,
    user: Option<&str>,
    t: Transport,
) -> Uri {
    let mut u = Uri::from_addr(user, local_addr_in(local, t));
    if t != Transport::Udp {
        u.params.push(palaver_sip::Param::new(
            "transport",
            Some(t.param_name().into()),
        ));
    }
    u
}

/// An RFC 7231 date for the `Date` header (registrars send it so phones can set their clocks).
fn httpdate(unix_ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = unix_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(mo - 1) as usize],
        y,
        h,
        m,
        s
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn httpdate_known_values() {
        assert_eq!(super::httpdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            super::httpdate(1_700_000_000_000),
            "Tue, 14 Nov 2023 22:13:20 GMT"
        );
    }
}
