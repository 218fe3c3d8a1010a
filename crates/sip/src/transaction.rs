//! The RFC 3261 transaction layer, sans-IO.
//!
//! [`TransactionLayer`] owns every client and server transaction. Bytes and
//! the current time go in ([`handle_datagram`](TransactionLayer::handle_datagram),
//! [`handle_message`](TransactionLayer::handle_message),
//! [`handle_timeout`](TransactionLayer::handle_timeout)); bytes to send
//! ([`poll_transmit`](TransactionLayer::poll_transmit)), events for the
//! transaction user ([`poll_event`](TransactionLayer::poll_event), see
//! [`TxEvent`]) and the next deadline
//! ([`poll_timeout`](TransactionLayer::poll_timeout)) come out. After every
//! `handle_*` or `send_*` call, drain `poll_transmit` and `poll_event`, then
//! sleep until `poll_timeout`.
//!
//! What it does on its own, so that no user can get it wrong:
//! - answers malformed requests with `400` and a reason that says what is
//!   wrong (`505`, `416` where those apply), `Max-Forwards: 0` with `483`,
//!   unknown methods with `501`, disallowed ones with `405` (both with
//!   `Allow`), a `CANCEL` with `200` (or `481` when nothing matches);
//! - absorbs retransmitted requests and re-sends the last response;
//! - retransmits requests and final responses over UDP (timers A, E, G) and
//!   gives up on time (B, F, H) — a transaction never stays stuck: a server
//!   transaction the user forgets to answer is answered `500`/`408` by
//!   itself;
//! - sends the `ACK` for non-2xx final responses, and (RFC 6026) keeps
//!   retransmitting a `2xx` to an `INVITE` until the `ACK` arrives.
//!
//! It does not know about dialogs or calls: that is the user's job.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::error::{ParseError, TransactionError};
use crate::header::{CSeq, HeaderName, Via};
use crate::message::{Message, Request, Response, SipMessage};
use crate::method::Method;
use crate::parse::parse_message;
use crate::status::StatusCode;
use crate::transport::{Peer, Transmit};

/// RFC 3261 timer values.
#[derive(Debug, Clone, Copy)]
pub struct TimerConfig {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Settings of the transaction layer.
#[derive(Debug, Clone)]
pub struct TransactionConfig {
    pub timers: TimerConfig,
    /// Methods the user handles; others known to us get `405`.
    pub allowed: Vec<Method>,
    /// `Server` header on responses the layer generates.
    pub server_name: String,
    /// A server INVITE transaction the user leaves without a final response
    /// this long is answered `408` by the layer.
    pub invite_server_limit: Duration,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        TransactionConfig {
            timers: TimerConfig::default(),
            allowed: vec![
                Method::Invite,
                Method::Ack,
                Method::Bye,
                Method::Cancel,
                Method::Options,
                Method::Register,
                Method::Info,
            ],
            server_name: "Palaver".into(),
            invite_server_limit: Duration::from_secs(300),
        }
    }
}

/// Identifies one transaction for the life of the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxKey(pub u64);

/// What the layer tells its user.
#[derive(Debug, Clone)]
pub enum TxEvent {
    /// A new request (not `ACK`, not `CANCEL`): answer it with
    /// [`TransactionLayer::send_response`].
    Request {
        key: TxKey,
        request: Request,
        peer: Peer,
    },
    /// An `ACK` that matched no server transaction: the ACK of a `2xx`
    /// (`acked` names the INVITE transaction when the layer was still
    /// retransmitting that 2xx) or a stray one.
    Ack {
        acked: Option<TxKey>,
        request: Request,
        peer: Peer,
    },
    /// A `CANCEL` matched the pending INVITE `invite`; the layer already
    /// answered the CANCEL with `200`. The user should answer the INVITE
    /// `487` (unless it already sent a final response).
    Cancelled { invite: TxKey, request: Request },
    /// A response to a client transaction (2xx retransmissions included for
    /// INVITE, so the user re-sends its ACK).
    Response { key: TxKey, response: Response },
    /// A client transaction got no final response in time (timer B or F):
    /// treat as `408`.
    Timeout { key: TxKey },
    /// A `2xx` we sent to an INVITE was never acknowledged (64·T1): the user
    /// should end the dialog with `BYE`.
    AckTimeout { key: TxKey },
    /// A datagram was dropped or answered by the layer because it was
    /// malformed; for logs and counters.
    Malformed { peer: Peer, error: ParseError },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Retransmit (A, E, G, or 2xx retransmission).
    Retransmit,
    /// Give up / clean up (B, D, F, H, I, J, K, L, M, and the user-answer limit).
    Expire,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    Trying,
    Proceeding,
    /// Non-2xx final sent (INVITE) or any final sent (non-INVITE).
    Completed,
    /// INVITE: ACK for the non-2xx received.
    Confirmed,
    /// INVITE: 2xx sent, waiting for the ACK (RFC 6026).
    Accepted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Calling,
    Proceeding,
    Completed,
    Accepted,
}

#[derive(Debug)]
struct ServerTx {
    is_invite: bool,
    state: ServerState,
    peer: Peer,
    request: Request,
    match_key: ServerMatchKey,
    /// The last response sent, serialised, for retransmission.
    last_response: Option<Vec<u8>>,
    ack_key: Option<(String, u32)>,
    /// The To tag of our responses, echoed in the 200 to a CANCEL.
    local_tag: Option<String>,
    retransmit_at: Option<Instant>,
    retransmit_interval: Duration,
    expire_at: Option<Instant>,
}

#[derive(Debug)]
struct ClientTx {
    is_invite: bool,
    state: ClientState,
    peer: Peer,
    request: Request,
    request_bytes: Vec<u8>,
    branch: String,
    method: Method,
    ack_bytes: Option<Vec<u8>>,
    retransmit_at: Option<Instant>,
    retransmit_interval: Duration,
    expire_at: Option<Instant>,
}

#[derive(Debug)]
enum Tx {
    Server(ServerTx),
    Client(ClientTx),
}

/// RFC 3261 §17.2.3 server matching: branch, sent-by and method (ACK and
/// CANCEL map onto their INVITE's transaction, CANCEL distinguished by kind).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ServerMatchKey {
    branch: String,
    sent_by: String,
    kind: MatchKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum MatchKind {
    Invite,
    Cancel,
    Other(Method),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientMatchKey {
    branch: String,
    method: Method,
}

/// The RFC 3261 magic cookie starting every compliant branch.
pub const BRANCH_COOKIE: &str = "z9hG4bK";

/// Owns all transactions. See the module docs for the run loop.
#[derive(Debug)]
pub struct TransactionLayer {
    config: TransactionConfig,
    next_key: u64,
    txs: HashMap<TxKey, Tx>,
    server_index: HashMap<ServerMatchKey, TxKey>,
    client_index: HashMap<ClientMatchKey, TxKey>,
    /// (Call-ID, CSeq) of INVITEs whose 2xx awaits its ACK.
    pending_acks: HashMap<(String, u32), TxKey>,
    timers: BinaryHeap<Reverse<(Instant, TxKey, TimerSlot)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
    allow_header: String,
}

/// Heap entries are ordered by time; the slot tells which deadline fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerSlot {
    Retransmit,
    Expire,
}

impl From<TimerSlot> for Timer {
    fn from(s: TimerSlot) -> Timer {
        match s {
            TimerSlot::Retransmit => Timer::Retransmit,
            TimerSlot::Expire => Timer::Expire,
        }
    }
}

impl TransactionLayer {
    pub fn new(config: TransactionConfig) -> TransactionLayer {
        let allow_header = config
            .allowed
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        TransactionLayer {
            config,
            next_key: 1,
            txs: HashMap::new(),
            server_index: HashMap::new(),
            client_index: HashMap::new(),
            pending_acks: HashMap::new(),
            timers: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            allow_header,
        }
    }

    /// The `Allow` header value for the configured methods.
    pub fn allow_header(&self) -> &str {
        &self.allow_header
    }

    /// Number of live transactions (tests use it to prove nothing is stuck).
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// The request that opened a server transaction.
    pub fn server_request(&self, key: TxKey) -> Option<&Request> {
        match self.txs.get(&key) {
            Some(Tx::Server(s)) => Some(&s.request),
            _ => None,
        }
    }

    /// The peer a server transaction's request came from.
    pub fn server_peer(&self, key: TxKey) -> Option<Peer> {
        match self.txs.get(&key) {
            Some(Tx::Server(s)) => Some(s.peer),
            _ => None,
        }
    }

    /// Whether a server transaction still waits for its final response.
    pub fn is_pending(&self, key: TxKey) -> bool {
        matches!(self.txs.get(&key), Some(Tx::Server(s)) if matches!(s.state, ServerState::Trying | ServerState::Proceeding))
    }

    /// A fresh `branch` parameter value.
    pub fn new_branch() -> String {
        format!("{BRANCH_COOKIE}{}", random_token(16))
    }

    /// Parses one datagram (or one framed stream message) and handles it.
    pub fn handle_datagram(&mut self, now: Instant, peer: Peer, data: &[u8]) {
        match parse_message(data, !peer.transport.is_reliable()) {
            Ok(msg) => self.handle_message(now, peer, msg),
            Err(error) => self.reject_malformed(peer, error),
        }
    }

    /// Answers (or drops) a message that failed to parse.
    pub fn reject_malformed(&mut self, peer: Peer, error: ParseError) {
        if let Some(ctx) = &error.reply
            && !ctx.is_ack
        {
            let mut resp = Response::from_reply_context(ctx, error.status, &error.reason);
            self.stamp_received(&mut resp, peer);
            self.add_server_header(&mut resp);
            if error.status == StatusCode::VERSION_NOT_SUPPORTED {
                resp.reason = "Version Not Supported".into();
            }
            self.transmits.push_back(Transmit {
                peer,
                data: resp.to_bytes(),
            });
        }
        self.events.push_back(TxEvent::Malformed { peer, error });
    }

    /// Handles a message that already parsed.
    pub fn handle_message(&mut self, now: Instant, peer: Peer, msg: Message) {
        match msg {
            Message::Request(req) => self.handle_request(now, peer, req),
            Message::Response(resp) => self.handle_response(now, resp),
        }
    }

    fn handle_request(&mut self, now: Instant, peer: Peer, mut req: Request) {
        annotate_received(&mut req, peer);
        let Some(top) = req.top_via() else {
            // The parser guarantees a Via; without one there is nowhere to answer.
            return;
        };
        let Some(key) = server_match_key(&req, &top) else {
            return;
        };

        if req.method == Method::Ack {
            self.handle_ack(now, peer, req, key);
            return;
        }

        if let Some(&txk) = self.server_index.get(&key) {
            // A retransmission: re-send the last response, if any.
            if let Some(Tx::Server(tx)) = self.txs.get(&txk)
                && let Some(bytes) = &tx.last_response
                && tx.state != ServerState::Confirmed
            {
                self.transmits.push_back(Transmit {
                    peer,
                    data: bytes.clone(),
                });
            }
            return;
        }

        // Requests the layer answers by itself.
        if req.max_forwards() == Some(0) {
            let resp = Response::for_request(&req, StatusCode::TOO_MANY_HOPS);
            self.respond_stateless(peer, resp);
            return;
        }
        if let Method::Extension(_) = req.method {
            let mut resp = Response::for_request(&req, StatusCode::NOT_IMPLEMENTED);
            resp.headers
                .push(HeaderName::Allow, self.allow_header.clone());
            self.respond_stateless(peer, resp);
            return;
        }
        if !self.config.allowed.contains(&req.method) {
            let mut resp = Response::for_request(&req, StatusCode::METHOD_NOT_ALLOWED);
            resp.headers
                .push(HeaderName::Allow, self.allow_header.clone());
            self.respond_stateless(peer, resp);
            return;
        }

        if req.method == Method::Cancel {
            self.handle_cancel(now, peer, req, key);
            return;
        }

        let is_invite = req.method == Method::Invite;
        let txk = self.alloc_key();
        let mut tx = ServerTx {
            is_invite,
            state: if is_invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            peer,
            request: req.clone(),
            match_key: key.clone(),
            last_response: None,
            ack_key: None,
            local_tag: None,
            retransmit_at: None,
            retransmit_interval: self.config.timers.t1,
            expire_at: None,
        };
        if is_invite {
            // Answer 100 at once so the client stops retransmitting (§17.2.1).
            let mut trying = Response::for_request(&req, StatusCode::TRYING);
            self.add_server_header(&mut trying);
            let bytes = trying.to_bytes();
            self.transmits.push_back(Transmit {
                peer,
                data: bytes.clone(),
            });
            tx.last_response = Some(bytes);
            tx.expire_at = Some(now + self.config.invite_server_limit);
        } else {
            // A non-INVITE request must be answered within 64·T1 (§17.1.2.2).
            tx.expire_at = Some(now + self.config.timers.t1 * 64 - self.config.timers.t1);
        }
        let expire = tx.expire_at;
        self.server_index.insert(key, txk);
        self.txs.insert(txk, Tx::Server(tx));
        if let Some(at) = expire {
            self.schedule(at, txk, TimerSlot::Expire);
        }
        self.events.push_back(TxEvent::Request {
            key: txk,
            request: req,
            peer,
        });
    }

    fn handle_ack(&mut self, now: Instant, peer: Peer, req: Request, key: ServerMatchKey) {
        let invite_key = ServerMatchKey {
            kind: MatchKind::Invite,
            ..key
        };
        if let Some(&txk) = self.server_index.get(&invite_key)
            && let Some(Tx::Server(tx)) = self.txs.get_mut(&txk)
            && tx.state == ServerState::Completed
        {
            // ACK of our non-2xx final response: absorb (§17.2.1).
            tx.state = ServerState::Confirmed;
            tx.retransmit_at = None;
            let wait = if tx.peer.transport.is_reliable() {
                Duration::ZERO
            } else {
                self.config.timers.t4
            };
            tx.expire_at = Some(now + wait);
            self.schedule(now + wait, txk, TimerSlot::Expire);
            return;
        }
        let acked = match (req.call_id(), req.cseq()) {
            (Some(cid), Some(cseq)) => self.pending_acks.remove(&(cid.to_owned(), cseq.seq)),
            _ => None,
        };
        if let Some(txk) = acked {
            self.terminate(txk);
        }
        self.events.push_back(TxEvent::Ack {
            acked,
            request: req,
            peer,
        });
    }

    fn handle_cancel(&mut self, now: Instant, peer: Peer, req: Request, key: ServerMatchKey) {
        let invite_key = ServerMatchKey {
            kind: MatchKind::Invite,
            ..key.clone()
        };
        let target = self.server_index.get(&invite_key).copied();
        let pending = target.filter(|k| self.is_pending(*k));
        let status = if target.is_some() {
            StatusCode::OK
        } else {
            StatusCode::CALL_DOES_NOT_EXIST
        };
        // The CANCEL is its own non-INVITE transaction so its retransmissions
        // are absorbed; the layer answers it right away.
        let txk = self.alloc_key();
        let mut resp = Response::for_request(&req, status);
        if let Some(t) = target
            && let Some(Tx::Server(inv)) = self.txs.get(&t)
            && let Some(tag) = inv.local_tag.clone()
        {
            resp.set_to_tag(&tag);
        }
        self.add_server_header(&mut resp);
        let bytes = resp.to_bytes();
        self.transmits.push_back(Transmit {
            peer,
            data: bytes.clone(),
        });
        let wait = if peer.transport.is_reliable() {
            Duration::ZERO
        } else {
            self.config.timers.t1 * 64
        };
        let tx = ServerTx {
            is_invite: false,
            state: ServerState::Completed,
            peer,
            request: req.clone(),
            match_key: key.clone(),
            last_response: Some(bytes),
            ack_key: None,
            local_tag: None,
            retransmit_at: None,
            retransmit_interval: self.config.timers.t1,
            expire_at: Some(now + wait),
        };
        self.server_index.insert(key, txk);
        self.txs.insert(txk, Tx::Server(tx));
        self.schedule(now + wait, txk, TimerSlot::Expire);
        if let Some(invite) = pending {
            self.events.push_back(TxEvent::Cancelled {
                invite,
                request: req,
            });
        }
    }

    fn handle_response(&mut self, now: Instant, resp: Response) {
        let Some(top) = resp.top_via() else { return };
        let Some(branch) = top.branch() else { return };
        let Some(cseq) = resp.cseq() else { return };
        let ck = ClientMatchKey {
            branch: branch.to_owned(),
            method: cseq.method.clone(),
        };
        let Some(&txk) = self.client_index.get(&ck) else {
            // Stray response: drop (§18.1.2).
            return;
        };
        let t = self.config.timers;
        let Some(Tx::Client(tx)) = self.txs.get_mut(&txk) else {
            return;
        };
        let status = resp.status;
        if tx.is_invite {
            match (tx.state, status.is_provisional(), status.is_success()) {
                (ClientState::Calling | ClientState::Proceeding, true, _) => {
                    tx.state = ClientState::Proceeding;
                    tx.retransmit_at = None;
                    self.events.push_back(TxEvent::Response {
                        key: txk,
                        response: resp,
                    });
                }
                (ClientState::Calling | ClientState::Proceeding, false, true) => {
                    // RFC 6026: stay around to pass 2xx retransmissions up.
                    tx.state = ClientState::Accepted;
                    tx.retransmit_at = None;
                    let at = now + t.t1 * 64;
                    tx.expire_at = Some(at);
                    self.schedule(at, txk, TimerSlot::Expire);
                    self.events.push_back(TxEvent::Response {
                        key: txk,
                        response: resp,
                    });
                }
                (ClientState::Accepted, false, true) => {
                    self.events.push_back(TxEvent::Response {
                        key: txk,
                        response: resp,
                    });
                }
                (ClientState::Calling | ClientState::Proceeding, false, false) => {
                    let ack = build_ack_for_non_2xx(&tx.request, &resp).to_bytes();
                    self.transmits.push_back(Transmit {
                        peer: tx.peer,
                        data: ack.clone(),
                    });
                    tx.ack_bytes = Some(ack);
                    tx.state = ClientState::Completed;
                    tx.retransmit_at = None;
                    let wait = if tx.peer.transport.is_reliable() {
                        Duration::ZERO
                    } else {
                        Duration::from_secs(32)
                    };
                    tx.expire_at = Some(now + wait);
                    self.schedule(now + wait, txk, TimerSlot::Expire);
                    self.events.push_back(TxEvent::Response {
                        key: txk,
                        response: resp,
                    });
                }
                (ClientState::Completed, false, false) => {
                    // Retransmitted final response: re-send the ACK.
                    if let Some(ack) = &tx.ack_bytes {
                        self.transmits.push_back(Transmit {
                            peer: tx.peer,
                            data: ack.clone(),
                        });
                    }
                }
                _ => {}
            }
        } else {
            match tx.state {
                ClientState::Calling | ClientState::Proceeding => {
                    if status.is_provisional() {
                        tx.state = ClientState::Proceeding;
                    } else {
                        tx.state = ClientState::Completed;
                        tx.retransmit_at = None;
                        let wait = if tx.peer.transport.is_reliable() {
                            Duration::ZERO
                        } else {
                            t.t4
                        };
                        tx.expire_at = Some(now + wait);
                        self.schedule(now + wait, txk, TimerSlot::Expire);
                    }
                    self.events.push_back(TxEvent::Response {
                        key: txk,
                        response: resp,
                    });
                }
                _ => {}
            }
        }
    }

    /// Starts a client transaction. The request's top `Via` must carry a
    /// branch (see [`TransactionLayer::new_branch`]).
    pub fn send_request(
        &mut self,
        now: Instant,
        peer: Peer,
        request: Request,
    ) -> Result<TxKey, TransactionError> {
        let top = request.top_via().ok_or(TransactionError::MissingBranch)?;
        let branch = top
            .branch()
            .ok_or(TransactionError::MissingBranch)?
            .to_owned();
        if request.method == Method::Ack {
            return Err(TransactionError::Malformed(
                "ACK is not a transaction: use send_stateless".into(),
            ));
        }
        let txk = self.alloc_key();
        let bytes = request.to_bytes();
        self.transmits.push_back(Transmit {
            peer,
            data: bytes.clone(),
        });
        let t = self.config.timers;
        let is_invite = request.method == Method::Invite;
        let reliable = peer.transport.is_reliable();
        let tx = ClientTx {
            is_invite,
            state: ClientState::Calling,
            peer,
            method: request.method.clone(),
            request,
            request_bytes: bytes,
            branch: branch.clone(),
            ack_bytes: None,
            retransmit_at: if reliable { None } else { Some(now + t.t1) },
            retransmit_interval: t.t1,
            expire_at: Some(now + t.t1 * 64),
        };
        let ck = ClientMatchKey {
            branch,
            method: tx.method.clone(),
        };
        let retransmit_at = tx.retransmit_at;
        // Insert before scheduling: a heap compaction during `schedule`
        // keeps only the timers of transactions it can find.
        self.client_index.insert(ck, txk);
        self.txs.insert(txk, Tx::Client(tx));
        if let Some(at) = retransmit_at {
            self.schedule(at, txk, TimerSlot::Retransmit);
        }
        self.schedule(now + t.t1 * 64, txk, TimerSlot::Expire);
        Ok(txk)
    }

    /// Sends a response within a server transaction.
    pub fn send_response(
        &mut self,
        now: Instant,
        key: TxKey,
        mut response: Response,
    ) -> Result<(), TransactionError> {
        let t = self.config.timers;
        self.add_server_header(&mut response);
        let Some(Tx::Server(tx)) = self.txs.get_mut(&key) else {
            return Err(TransactionError::NoSuchTransaction);
        };
        if !matches!(tx.state, ServerState::Trying | ServerState::Proceeding) {
            return Err(TransactionError::AlreadyCompleted);
        }
        let bytes = response.to_bytes();
        self.transmits.push_back(Transmit {
            peer: tx.peer,
            data: bytes.clone(),
        });
        tx.last_response = Some(bytes);
        if tx.local_tag.is_none() {
            tx.local_tag = response.to_tag();
        }
        let reliable = tx.peer.transport.is_reliable();
        let status = response.status;
        if status.is_provisional() {
            tx.state = ServerState::Proceeding;
            return Ok(());
        }
        if tx.is_invite && status.is_success() {
            tx.state = ServerState::Accepted;
            // The layer retransmits the 2xx until the ACK (or 64·T1) — over
            // reliable transports too the ACK is awaited so AckTimeout fires.
            if !reliable {
                tx.retransmit_at = Some(now + t.t1);
                tx.retransmit_interval = t.t1;
            }
            tx.expire_at = Some(now + t.t1 * 64);
            let ack_key = response
                .call_id()
                .zip(response.cseq())
                .map(|(c, s)| (c.to_owned(), s.seq));
            tx.ack_key = ack_key.clone();
            let (ra, ea) = (tx.retransmit_at, tx.expire_at);
            if let Some(k) = ack_key {
                self.pending_acks.insert(k, key);
            }
            if let Some(at) = ra {
                self.schedule(at, key, TimerSlot::Retransmit);
            }
            if let Some(at) = ea {
                self.schedule(at, key, TimerSlot::Expire);
            }
        } else if tx.is_invite {
            tx.state = ServerState::Completed;
            if !reliable {
                tx.retransmit_at = Some(now + t.t1);
                tx.retransmit_interval = t.t1;
            }
            tx.expire_at = Some(now + t.t1 * 64); // timer H
            let (ra, ea) = (tx.retransmit_at, tx.expire_at);
            if let Some(at) = ra {
                self.schedule(at, key, TimerSlot::Retransmit);
            }
            if let Some(at) = ea {
                self.schedule(at, key, TimerSlot::Expire);
            }
        } else {
            tx.state = ServerState::Completed;
            let wait = if reliable { Duration::ZERO } else { t.t1 * 64 }; // timer J
            tx.expire_at = Some(now + wait);
            self.schedule(now + wait, key, TimerSlot::Expire);
        }
        Ok(())
    }

    /// Sends a message outside any transaction: the ACK of a 2xx, or a
    /// response to a request that has no transaction.
    pub fn send_stateless(&mut self, peer: Peer, msg: Message) {
        self.transmits.push_back(Transmit {
            peer,
            data: msg.to_bytes(),
        });
    }

    fn respond_stateless(&mut self, peer: Peer, mut resp: Response) {
        self.add_server_header(&mut resp);
        self.transmits.push_back(Transmit {
            peer,
            data: resp.to_bytes(),
        });
    }

    fn add_server_header(&self, resp: &mut Response) {
        if !resp.headers.contains(&HeaderName::Server) {
            resp.headers
                .push(HeaderName::Server, self.config.server_name.clone());
        }
    }

    fn stamp_received(&self, resp: &mut Response, peer: Peer) {
        // Mirror what annotate_received does for parsed requests.
        if let Some(first) = resp
            .headers
            .0
            .iter_mut()
            .find(|h| h.name == HeaderName::Via)
            && let Ok(list) = crate::text::split_commas(&first.value)
            && let Some(top) = list.first()
            && let Ok(mut via) = Via::parse(top)
        {
            stamp_via(&mut via, peer);
            let rest: Vec<&str> = list[1..].to_vec();
            let mut value = via.to_string();
            for r in rest {
                value.push_str(", ");
                value.push_str(r);
            }
            first.value = value;
        }
    }

    /// Fires every deadline that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, key, slot))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.fire(now, at, key, slot.into());
        }
    }

    fn fire(&mut self, now: Instant, at: Instant, key: TxKey, timer: Timer) {
        let t = self.config.timers;
        let Some(tx) = self.txs.get_mut(&key) else {
            return;
        };
        match (tx, timer) {
            (Tx::Client(tx), Timer::Retransmit) => {
                if tx.retransmit_at != Some(at) {
                    return;
                }
                self.transmits.push_back(Transmit {
                    peer: tx.peer,
                    data: tx.request_bytes.clone(),
                });
                // Timer A doubles without bound; timer E caps at T2 (§17.1.2.2),
                // and in Proceeding E is pinned to T2.
                tx.retransmit_interval = if tx.is_invite {
                    tx.retransmit_interval * 2
                } else if tx.state == ClientState::Proceeding {
                    t.t2
                } else {
                    (tx.retransmit_interval * 2).min(t.t2)
                };
                let next = now + tx.retransmit_interval;
                tx.retransmit_at = Some(next);
                self.schedule(next, key, TimerSlot::Retransmit);
            }
            (Tx::Client(tx), Timer::Expire) => {
                if tx.expire_at != Some(at) {
                    return;
                }
                let timed_out = matches!(tx.state, ClientState::Calling | ClientState::Proceeding);
                self.terminate(key);
                if timed_out {
                    self.events.push_back(TxEvent::Timeout { key });
                }
            }
            (Tx::Server(tx), Timer::Retransmit) => {
                if tx.retransmit_at != Some(at) {
                    return;
                }
                if let Some(bytes) = &tx.last_response {
                    self.transmits.push_back(Transmit {
                        peer: tx.peer,
                        data: bytes.clone(),
                    });
                }
                tx.retransmit_interval = (tx.retransmit_interval * 2).min(t.t2);
                let next = now + tx.retransmit_interval;
                tx.retransmit_at = Some(next);
                self.schedule(next, key, TimerSlot::Retransmit);
            }
            (Tx::Server(tx), Timer::Expire) => {
                if tx.expire_at != Some(at) {
                    return;
                }
                match tx.state {
                    ServerState::Trying | ServerState::Proceeding => {
                        // The user never answered: answer for it, so the
                        // client is not left retransmitting forever.
                        let status = if tx.is_invite {
                            StatusCode::REQUEST_TIMEOUT
                        } else {
                            StatusCode::SERVER_INTERNAL_ERROR
                        };
                        let mut resp = Response::for_request(&tx.request, status);
                        resp.set_to_tag(&random_token(10));
                        let _ = self.send_response(now, key, resp);
                    }
                    ServerState::Accepted => {
                        self.terminate(key);
                        self.events.push_back(TxEvent::AckTimeout { key });
                    }
                    ServerState::Completed | ServerState::Confirmed => {
                        self.terminate(key);
                    }
                }
            }
        }
    }

    /// The earliest deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    fn terminate(&mut self, key: TxKey) {
        match self.txs.remove(&key) {
            Some(Tx::Server(tx)) => {
                if self.server_index.get(&tx.match_key) == Some(&key) {
                    self.server_index.remove(&tx.match_key);
                }
                if let Some(ak) = tx.ack_key
                    && self.pending_acks.get(&ak) == Some(&key)
                {
                    self.pending_acks.remove(&ak);
                }
            }
            Some(Tx::Client(tx)) => {
                let ck = ClientMatchKey {
                    branch: tx.branch,
                    method: tx.method,
                };
                if self.client_index.get(&ck) == Some(&key) {
                    self.client_index.remove(&ck);
                }
            }
            None => {}
        }
    }

    fn alloc_key(&mut self) -> TxKey {
        let k = TxKey(self.next_key);
        self.next_key += 1;
        k
    }

    fn schedule(&mut self, at: Instant, key: TxKey, slot: TimerSlot) {
        self.timers.push(Reverse((at, key, slot)));
        // Lazily-deleted entries pile up for long-lived transactions; compact
        // when the heap is mostly garbage.
        if self.timers.len() > 64 && self.timers.len() > self.txs.len() * 8 {
            self.compact_timers();
        }
    }

    fn compact_timers(&mut self) {
        let txs = &self.txs;
        let live: Vec<_> = self
            .timers
            .drain()
            .filter(|Reverse((at, key, slot))| match txs.get(key) {
                Some(Tx::Server(s)) => match slot {
                    TimerSlot::Retransmit => s.retransmit_at == Some(*at),
                    TimerSlot::Expire => s.expire_at == Some(*at),
                },
                Some(Tx::Client(c)) => match slot {
                    TimerSlot::Retransmit => c.retransmit_at == Some(*at),
                    TimerSlot::Expire => c.expire_at == Some(*at),
                },
                None => false,
            })
            .collect();
        self.timers = live.into_iter().collect();
    }
}

/// Adds `received`/`rport` to the top Via so responses find their way back
/// through NAT (RFC 3261 §18.2.1, RFC 3581).
fn annotate_received(req: &mut Request, peer: Peer) {
    if let Some(first) = req.headers.0.iter_mut().find(|h| h.name == HeaderName::Via)
        && let Ok(list) = crate::text::split_commas(&first.value)
        && let Some(top) = list.first()
        && let Ok(mut via) = Via::parse(top)
    {
        let before = via.clone();
        stamp_via(&mut via, peer);
        if via != before {
            let mut value = via.to_string();
            for r in &list[1..] {
                value.push_str(", ");
                value.push_str(r);
            }
            first.value = value;
        }
    }
}

fn stamp_via(via: &mut Via, peer: Peer) {
    let ip = peer.addr.ip().to_string();
    if via.host.trim_start_matches('[').trim_end_matches(']') != ip {
        via.set_param("received", Some(ip));
    }
    if via.param("rport").is_some() {
        via.set_param("rport", Some(peer.addr.port().to_string()));
    }
}

fn server_match_key(req: &Request, top: &Via) -> Option<ServerMatchKey> {
    let kind = match req.method {
        Method::Invite | Method::Ack => MatchKind::Invite,
        Method::Cancel => MatchKind::Cancel,
        ref m => MatchKind::Other(m.clone()),
    };
    let branch = match top.branch() {
        Some(b) if b.starts_with(BRANCH_COOKIE) => b.to_owned(),
        // RFC 2543 peers: fall back on the fields that identify a request.
        _ => {
            let cseq = req.cseq()?;
            format!(
                "legacy|{}|{}|{}",
                req.call_id()?,
                req.from_tag().unwrap_or_default(),
                cseq.seq
            )
        }
    };
    Some(ServerMatchKey {
        branch,
        sent_by: top.sent_by().to_ascii_lowercase(),
        kind,
    })
}

/// §17.1.1.3: the ACK for a non-2xx final response reuses the INVITE's
/// branch, Request-URI, Call-ID, From, CSeq number and Route headers.
fn build_ack_for_non_2xx(invite: &Request, resp: &Response) -> Request {
    let mut ack = Request::new(Method::Ack, invite.uri.clone());
    if let Some(v) = invite.headers.get(&HeaderName::Via) {
        let top = crate::text::split_commas(v)
            .ok()
            .and_then(|l| l.first().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| v.to_owned());
        ack.headers.push(HeaderName::Via, top);
    }
    ack.headers.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::CallId] {
        if let Some(v) = invite.headers.get(&name) {
            ack.headers.push(name, v);
        }
    }
    if let Some(to) = resp.headers.get(&HeaderName::To) {
        ack.headers.push(HeaderName::To, to);
    }
    if let Some(c) = invite.cseq() {
        ack.headers.push(
            HeaderName::CSeq,
            CSeq {
                seq: c.seq,
                method: Method::Ack,
            }
            .to_string(),
        );
    }
    for r in invite.headers.get_all(&HeaderName::Route) {
        ack.headers.push(HeaderName::Route, r);
    }
    ack
}

/// A random alphanumeric token (tags, branches, Call-IDs).
pub fn random_token(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}
