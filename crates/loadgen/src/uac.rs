//! The SIP side of many simulated phones: a sans-IO user agent client that
//! places calls over UDP, answers digest challenges, acknowledges, hangs up
//! and answers what the server sends inside a call.
//!
//! Meet first: [`Uac`] (every call of a run; datagrams and `now` go in
//! through [`Uac::handle_datagram`] and [`Uac::handle_timeout`], datagrams
//! for the server come out of [`Uac::poll_transmit`], [`CallEvent`]s out
//! of [`Uac::poll_event`], the next deadline out of [`Uac::poll_timeout`]),
//! [`CallHandle`] (the caller's number for a call, carried in its Call-ID so
//! a response finds its call without a string table) and [`UacConfig`].
//!
//! It speaks just enough RFC 3261 for load: INVITE retransmission (timer A)
//! until a provisional or final response, a setup deadline, ACK for 2xx
//! (and again for each 2xx retransmission) and for failures, one retry with
//! credentials after `401`/`407`, BYE with retransmissions (timer E/F), and
//! `200 OK` to the server's BYE, re-INVITE, INFO, OPTIONS and NOTIFY.
//! Messages, dialogs and digest come from `palaver-sip`. No sockets, no
//! clock: the runtime in [`crate::run`] owns those.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use palaver_sip::auth::{Challenge, Credentials};
use palaver_sip::{
    CSeq, Dialog, HeaderName, Message, Method, Peer, Request, Response, SipMessage, StatusCode,
    TransactionLayer, Transport, Uri, parse_message, random_token,
};

/// The caller's name for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u32);

/// Where and as whom calls are placed.
#[derive(Debug, Clone)]
pub struct UacConfig {
    /// Our SIP socket's address (Via, Contact, From host).
    pub local: SocketAddr,
    /// The server.
    pub server: SocketAddr,
    /// User part of From and Contact; also the digest username.
    pub user: String,
    /// Digest password; without one a challenge fails the call.
    pub password: Option<String>,
    /// RFC 3261 T1 (500 ms).
    pub t1: Duration,
    /// Give up on a call not answered within this time.
    pub setup_timeout: Duration,
}

impl UacConfig {
    /// Defaults: user `loadgen`, no password, T1 500 ms, 32 s setup limit.
    pub fn new(local: SocketAddr, server: SocketAddr) -> Self {
        Self {
            local,
            server,
            user: "loadgen".into(),
            password: None,
            t1: Duration::from_millis(500),
            setup_timeout: Duration::from_secs(32),
        }
    }
}

/// Why a call did not get answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A final non-2xx response (after the credentials retry, if any).
    Status(u16),
    /// No final response within the setup limit.
    Timeout,
    /// Challenged, but we have no password or the server rejected ours.
    Auth(u16),
}

/// What happened to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// 200 OK to our INVITE: `setup` after we first sent it; `sdp` is the
    /// answer body.
    Answered {
        call: CallHandle,
        setup: Duration,
        sdp: Vec<u8>,
    },
    /// The call will not be answered.
    Failed {
        call: CallHandle,
        failure: Failure,
        after: Duration,
    },
    /// The server hung up (its BYE was answered with 200).
    RemoteHangup { call: CallHandle },
    /// Our BYE completed; `answered` false when it timed out.
    Ended { call: CallHandle, answered: bool },
}

enum Phase {
    Inviting {
        request: Request,
        bytes: Vec<u8>,
        next_retransmit: Option<Instant>,
        interval: Duration,
        auth_tried: bool,
    },
    Established {
        dialog: Box<Dialog>,
        ack: Vec<u8>,
    },
    Byeing {
        bytes: Vec<u8>,
        next: Instant,
        interval: Duration,
        deadline: Instant,
        cseq: u32,
    },
}

struct Call {
    number: String,
    offer: Vec<u8>,
    started: Instant,
    setup_deadline: Instant,
    phase: Phase,
    invite_cseq: u32,
    from_tag: String,
    hang_up_when_answered: bool,
    /// ACK for the last failed INVITE transaction, resent if its final
    /// response is retransmitted.
    failure_ack: Option<(u32, Vec<u8>)>,
    timer_generation: u32,
}

/// Every call of a run. See the module documentation.
pub struct Uac {
    config: UacConfig,
    /// Distinguishes this run's Call-IDs from any other's.
    run_token: String,
    local_str: String,
    calls: HashMap<CallHandle, Call>,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<CallEvent>,
    cnonce: String,
    /// Datagrams that did not parse or belonged to no call.
    pub strays: u64,
    /// INVITE and BYE retransmissions sent.
    pub retransmissions: u64,
}

impl Uac {
    pub fn new(config: UacConfig) -> Self {
        let local_str = config.local.to_string();
        Self {
            config,
            run_token: random_token(8),
            local_str,
            calls: HashMap::new(),
            timers: BinaryHeap::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            cnonce: random_token(12),
            strays: 0,
            retransmissions: 0,
        }
    }

    /// Calls in progress (inviting, established or hanging up).
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    fn call_id(&self, call: CallHandle) -> String {
        format!("lg{}-{}", call.0, self.run_token)
    }

    fn handle_of(&self, call_id: &str) -> Option<CallHandle> {
        let rest = call_id.trim().strip_prefix("lg")?;
        let (n, token) = rest.split_once('-')?;
        (token == self.run_token)
            .then(|| n.parse().ok().map(CallHandle))
            .flatten()
    }

    fn arm(&mut self, call: CallHandle, at: Instant) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.timer_generation = c.timer_generation.wrapping_add(1);
            self.timers.push(Reverse((at, call.0, c.timer_generation)));
        }
    }

    /// Places a call to `number` with `offer` (an SDP body).
    pub fn start_call(&mut self, now: Instant, call: CallHandle, number: &str, offer: Vec<u8>) {
        let from_tag = palaver_sip::new_tag();
        let request = self.build_invite(call, number, &from_tag, 1, &offer, None);
        let bytes = request.to_bytes();
        self.transmit.push_back(bytes.clone());
        let c = Call {
            number: number.to_owned(),
            offer,
            started: now,
            setup_deadline: now + self.config.setup_timeout,
            phase: Phase::Inviting {
                request,
                bytes,
                next_retransmit: Some(now + self.config.t1),
                interval: self.config.t1,
                auth_tried: false,
            },
            invite_cseq: 1,
            from_tag,
            hang_up_when_answered: false,
            failure_ack: None,
            timer_generation: 0,
        };
        self.calls.insert(call, c);
        self.arm(call, now + self.config.t1);
    }

    fn request_uri(&self, number: &str) -> Uri {
        Uri::from_addr(Some(number), self.config.server)
    }

    fn build_invite(
        &self,
        call: CallHandle,
        number: &str,
        from_tag: &str,
        cseq: u32,
        offer: &[u8],
        auth: Option<(bool, String)>,
    ) -> Request {
        let uri = self.request_uri(number);
        let mut req = Request::new(Method::Invite, uri.clone());
        let h = &mut req.headers;
        h.push(
            HeaderName::Via,
            format!(
                "SIP/2.0/UDP {};branch={};rport",
                self.local_str,
                TransactionLayer::new_branch()
            ),
        );
        h.push(HeaderName::MaxForwards, "70");
        h.push(
            HeaderName::From,
            format!(
                "<sip:{}@{}>;tag={}",
                self.config.user, self.local_str, from_tag
            ),
        );
        h.push(HeaderName::To, format!("<{uri}>"));
        h.push(HeaderName::CallId, self.call_id(call));
        h.push(
            HeaderName::CSeq,
            CSeq {
                seq: cseq,
                method: Method::Invite,
            }
            .to_string(),
        );
        h.push(
            HeaderName::Contact,
            format!("<sip:{}@{}>", self.config.user, self.local_str),
        );
        h.push(
            HeaderName::Allow,
            "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY",
        );
        h.push(HeaderName::UserAgent, "palaver-loadgen");
        if let Some((proxy, value)) = auth {
            let name = if proxy {
                HeaderName::ProxyAuthorization
            } else {
                HeaderName::Authorization
            };
            h.push(name, value);
        }
        req.set_body("application/sdp", offer.to_vec());
        req
    }

    /// Hangs up: BYE now if answered, right after the answer if still
    /// ringing. Unknown or finished calls are ignored.
    pub fn hang_up(&mut self, now: Instant, call: CallHandle) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        match &c.phase {
            Phase::Inviting { .. } => c.hang_up_when_answered = true,
            Phase::Established { .. } => self.send_bye(now, call),
            Phase::Byeing { .. } => {}
        }
    }

    fn send_bye(&mut self, now: Instant, call: CallHandle) {
        let t1 = self.config.t1;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Phase::Established { dialog, .. } = &mut c.phase else {
            return;
        };
        let bye = dialog.new_request(Method::Bye, &self.local_str);
        let cseq = dialog.local_cseq;
        let bytes = bye.to_bytes();
        self.transmit.push_back(bytes.clone());
        c.phase = Phase::Byeing {
            bytes,
            next: now + t1,
            interval: t1,
            deadline: now + 64 * t1,
            cseq,
        };
        self.arm(call, now + t1);
    }

    /// One datagram from the server.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8]) {
        match parse_message(data, true) {
            Ok(Message::Response(r)) => self.handle_response(now, r),
            Ok(Message::Request(r)) => self.handle_request(r),
            Err(_) => self.strays += 1,
        }
    }

    fn handle_response(&mut self, now: Instant, resp: Response) {
        let Some(call) = resp.call_id().and_then(|id| self.handle_of(id)) else {
            self.strays += 1;
            return;
        };
        let Some(cseq) = resp.cseq() else {
            self.strays += 1;
            return;
        };
        match cseq.method {
            Method::Invite => self.invite_response(now, call, cseq.seq, resp),
            Method::Bye => {
                let done = matches!(
                    self.calls.get(&call).map(|c| &c.phase),
                    Some(Phase::Byeing { cseq: s, .. }) if *s == cseq.seq
                );
                if done && resp.status.is_final() {
                    self.calls.remove(&call);
                    self.events.push_back(CallEvent::Ended {
                        call,
                        answered: true,
                    });
                }
            }
            _ => {}
        }
    }

    fn invite_response(&mut self, now: Instant, call: CallHandle, seq: u32, resp: Response) {
        let Some(c) = self.calls.get_mut(&call) else {
            // Retransmitted response for a call we already finished.
            return;
        };
        if seq != c.invite_cseq {
            if let Some((s, ack)) = &c.failure_ack
                && *s == seq
                && resp.status.is_final()
            {
                self.transmit.push_back(ack.clone());
            }
            return;
        }
        let status = resp.status;
        match &mut c.phase {
            Phase::Inviting {
                request,
                next_retransmit,
                auth_tried,
                ..
            } => {
                if status.is_provisional() {
                    // Timer A stops; the setup deadline still runs.
                    *next_retransmit = None;
                    return;
                }
                if status.is_success() {
                    let peer = Peer {
                        transport: Transport::Udp,
                        addr: self.config.server,
                        conn: None,
                    };
                    let Some(dialog) = Dialog::uac(request, &resp, peer) else {
                        self.strays += 1;
                        return;
                    };
                    let ack = dialog.ack(c.invite_cseq, &self.local_str).to_bytes();
                    self.transmit.push_back(ack.clone());
                    let setup = now.saturating_duration_since(c.started);
                    let hang_up = c.hang_up_when_answered;
                    c.phase = Phase::Established {
                        dialog: Box::new(dialog),
                        ack,
                    };
                    c.timer_generation = c.timer_generation.wrapping_add(1);
                    self.events.push_back(CallEvent::Answered {
                        call,
                        setup,
                        sdp: resp.body.to_vec(),
                    });
                    if hang_up {
                        self.send_bye(now, call);
                    }
                    return;
                }
                // Final failure: ACK it (same branch, the response's To).
                let ack = failure_ack(request, &resp);
                self.transmit.push_back(ack.clone());
                c.failure_ack = Some((c.invite_cseq, ack));
                let challenged = matches!(status.0, 401 | 407);
                if challenged
                    && !*auth_tried
                    && let Some(auth) = self.answer_challenge(call, &resp)
                {
                    self.retry_with(now, call, auth);
                    return;
                }
                let failure = if challenged {
                    Failure::Auth(status.0)
                } else {
                    Failure::Status(status.0)
                };
                self.fail(now, call, failure);
            }
            Phase::Established { ack, .. } => {
                if status.is_success() {
                    // Our ACK was lost: the 200 is retransmitted.
                    self.transmit.push_back(ack.clone());
                }
            }
            Phase::Byeing { .. } => {}
        }
    }

    fn answer_challenge(&self, call: CallHandle, resp: &Response) -> Option<(bool, String)> {
        let password = self.config.password.as_deref()?;
        let c = self.calls.get(&call)?;
        let (proxy, header) = if resp.status == StatusCode::PROXY_AUTH_REQUIRED {
            (true, HeaderName::ProxyAuthenticate)
        } else {
            (false, HeaderName::WwwAuthenticate)
        };
        let challenge = Challenge::parse(resp.headers.get(&header)?).ok()?;
        let uri = self.request_uri(&c.number).to_string();
        let creds = Credentials::answer(
            &challenge,
            "INVITE",
            &uri,
            &self.config.user,
            password,
            1,
            &self.cnonce,
        );
        Some((proxy, creds.to_header_value()))
    }

    fn retry_with(&mut self, now: Instant, call: CallHandle, auth: (bool, String)) {
        let t1 = self.config.t1;
        if let Some(c) = self.calls.get_mut(&call) {
            c.invite_cseq += 1;
        }
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let request = self.build_invite(
            call,
            &c.number,
            &c.from_tag,
            c.invite_cseq,
            &c.offer,
            Some(auth),
        );
        let bytes = request.to_bytes();
        self.transmit.push_back(bytes.clone());
        if let Some(c) = self.calls.get_mut(&call) {
            c.phase = Phase::Inviting {
                request,
                bytes,
                next_retransmit: Some(now + t1),
                interval: t1,
                auth_tried: true,
            };
        }
        self.arm(call, now + t1);
    }

    fn fail(&mut self, now: Instant, call: CallHandle, failure: Failure) {
        if let Some(c) = self.calls.remove(&call) {
            self.events.push_back(CallEvent::Failed {
                call,
                failure,
                after: now.saturating_duration_since(c.started),
            });
        }
    }

    fn handle_request(&mut self, req: Request) {
        let call = req.call_id().and_then(|id| self.handle_of(id));
        let known = call.is_some_and(|c| self.calls.contains_key(&c));
        match req.method {
            Method::Ack => {}
            Method::Bye => {
                let status = if known {
                    StatusCode::OK
                } else {
                    StatusCode::CALL_DOES_NOT_EXIST
                };
                self.respond(&req, status, None);
                if let Some(call) = call
                    && known
                {
                    self.calls.remove(&call);
                    self.events.push_back(CallEvent::RemoteHangup { call });
                }
            }
            Method::Invite => {
                // A re-INVITE (hold music, session refresh): accept it with
                // our original offer, which names the same stream.
                let offer = call
                    .and_then(|c| self.calls.get(&c))
                    .filter(|c| matches!(c.phase, Phase::Established { .. }))
                    .map(|c| c.offer.clone());
                match offer {
                    Some(sdp) => self.respond(&req, StatusCode::OK, Some(sdp)),
                    None => self.respond(&req, StatusCode::CALL_DOES_NOT_EXIST, None),
                }
            }
            Method::Options | Method::Info | Method::Notify | Method::Update => {
                self.respond(&req, StatusCode::OK, None);
            }
            _ => self.respond(&req, StatusCode::NOT_IMPLEMENTED, None),
        }
    }

    fn respond(&mut self, req: &Request, status: StatusCode, sdp: Option<Vec<u8>>) {
        let mut r = Response::for_request(req, status);
        if status.is_success() {
            r.headers.push(
                HeaderName::Contact,
                format!("<sip:{}@{}>", self.config.user, self.local_str),
            );
        }
        if let Some(sdp) = sdp {
            r.set_body("application/sdp", sdp);
        }
        self.transmit.push_back(r.to_bytes());
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, id, generation))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let call = CallHandle(id);
            let Some(c) = self.calls.get_mut(&call) else {
                continue;
            };
            if c.timer_generation != generation {
                continue;
            }
            match &mut c.phase {
                Phase::Inviting {
                    bytes,
                    next_retransmit,
                    interval,
                    ..
                } => {
                    if now >= c.setup_deadline {
                        self.fail(now, call, Failure::Timeout);
                        continue;
                    }
                    if let Some(next) = next_retransmit
                        && *next <= now
                    {
                        self.transmit.push_back(bytes.clone());
                        self.retransmissions += 1;
                        *interval *= 2;
                        *next_retransmit = Some(now + *interval);
                    }
                    let next =
                        next_retransmit.map_or(c.setup_deadline, |n| n.min(c.setup_deadline));
                    self.arm(call, next);
                }
                Phase::Byeing {
                    bytes,
                    next,
                    interval,
                    deadline,
                    ..
                } => {
                    if now >= *deadline {
                        self.calls.remove(&call);
                        self.events.push_back(CallEvent::Ended {
                            call,
                            answered: false,
                        });
                        continue;
                    }
                    if *next <= now {
                        self.transmit.push_back(bytes.clone());
                        self.retransmissions += 1;
                        *interval = (*interval * 2).min(Duration::from_secs(4));
                        *next = now + *interval;
                    }
                    let at = (*next).min(*deadline);
                    self.arm(call, at);
                }
                Phase::Established { .. } => {}
            }
        }
    }

    /// The next datagram for the server.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    /// When [`Uac::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }
}

/// The ACK for a non-2xx final response: part of the INVITE transaction,
/// so it reuses the INVITE's Request-URI, top Via and CSeq number, and
/// takes the response's To (RFC 3261 §17.1.1.3).
fn failure_ack(invite: &Request, resp: &Response) -> Vec<u8> {
    let mut ack = Request::new(Method::Ack, invite.uri.clone());
    let h = &mut ack.headers;
    if let Some(v) = invite.headers.get(&HeaderName::Via) {
        h.push(HeaderName::Via, v.to_owned());
    }
    h.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::CallId] {
        if let Some(v) = invite.headers.get(&name) {
            h.push(name, v.to_owned());
        }
    }
    if let Some(v) = resp.headers.get(&HeaderName::To) {
        h.push(HeaderName::To, v.to_owned());
    }
    if let Some(seq) = invite.cseq() {
        h.push(
            HeaderName::CSeq,
            CSeq {
                seq: seq.seq,
                method: Method::Ack,
            }
            .to_string(),
        );
    }
    ack.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use palaver_sip::auth::Algorithm;

    const SDP: &[u8] = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

    fn uac(password: Option<&str>) -> Uac {
        let mut cfg = UacConfig::new(
            "127.0.0.1:5070".parse().expect("address"),
            "127.0.0.1:5060".parse().expect("address"),
        );
        cfg.user = "1001".into();
        cfg.password = password.map(str::to_owned);
        cfg.setup_timeout = Duration::from_secs(8);
        Uac::new(cfg)
    }

    fn sent(u: &mut Uac) -> Vec<Request> {
        let mut out = Vec::new();
        while let Some(d) = u.poll_transmit() {
            match parse_message(&d, true).expect("we send valid SIP") {
                Message::Request(r) => out.push(r),
                Message::Response(r) => panic!("unexpected response {}", r.status.0),
            }
        }
        out
    }

    fn sent_responses(u: &mut Uac) -> Vec<Response> {
        let mut out = Vec::new();
        while let Some(d) = u.poll_transmit() {
            if let Message::Response(r) = parse_message(&d, true).expect("valid SIP") {
                out.push(r);
            }
        }
        out
    }

    fn reply(req: &Request, status: u16, body: Option<&[u8]>) -> Vec<u8> {
        let mut r = Response::for_request(req, StatusCode(status));
        if status > 100 {
            r.set_to_tag("srv");
        }
        r.headers
            .push(HeaderName::Contact, "<sip:800@127.0.0.1:5060>");
        if let Some(b) = body {
            r.set_body("application/sdp", b.to_vec());
        }
        r.to_bytes()
    }

    fn events(u: &mut Uac) -> Vec<CallEvent> {
        std::iter::from_fn(|| u.poll_event()).collect()
    }

    #[test]
    fn invite_answer_ack() {
        let t0 = Instant::now();
        let mut u = uac(None);
        u.start_call(t0, CallHandle(7), "800", SDP.to_vec());
        let inv = sent(&mut u);
        assert_eq!(inv.len(), 1);
        let inv = &inv[0];
        assert_eq!(inv.method, Method::Invite);
        assert_eq!(inv.uri.user.as_deref(), Some("800"));
        assert_eq!(&inv.body[..], SDP);
        assert_eq!(inv.content_type().as_deref(), Some("application/sdp"));

        u.handle_datagram(t0 + Duration::from_millis(2), &reply(inv, 100, None));
        u.handle_datagram(
            t0 + Duration::from_millis(30),
            &reply(inv, 200, Some(b"answer")),
        );
        let acks = sent(&mut u);
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0].method, Method::Ack);
        assert_eq!(acks[0].to_tag().as_deref(), Some("srv"));
        assert_eq!(acks[0].cseq().map(|c| c.seq), Some(1));
        assert_eq!(
            events(&mut u),
            vec![CallEvent::Answered {
                call: CallHandle(7),
                setup: Duration::from_millis(30),
                sdp: b"answer".to_vec()
            }]
        );
        // A retransmitted 200 gets the ACK again, no second event.
        u.handle_datagram(
            t0 + Duration::from_millis(530),
            &reply(inv, 200, Some(b"answer")),
        );
        assert_eq!(sent(&mut u).len(), 1);
        assert!(events(&mut u).is_empty());
        // 100 Trying stopped the retransmissions.
        u.handle_timeout(t0 + Duration::from_secs(5));
        assert!(sent(&mut u).is_empty());
    }

    #[test]
    fn proxy_challenge_is_answered_once() {
        let t0 = Instant::now();
        let mut u = uac(Some("secret"));
        u.start_call(t0, CallHandle(1), "1002", SDP.to_vec());
        let inv = sent(&mut u).remove(0);
        let challenge = Challenge {
            realm: "palaver".into(),
            nonce: "abc123".into(),
            opaque: None,
            algorithm: Algorithm::Md5,
            qop_auth: true,
            stale: false,
        };
        let mut r = Response::for_request(&inv, StatusCode::PROXY_AUTH_REQUIRED);
        r.set_to_tag("x1");
        r.headers
            .push(HeaderName::ProxyAuthenticate, challenge.to_header_value());
        u.handle_datagram(t0 + Duration::from_millis(5), &r.to_bytes());
        let out = sent(&mut u);
        assert_eq!(out.len(), 2, "ACK and the new INVITE");
        assert_eq!(out[0].method, Method::Ack);
        assert_eq!(
            out[0].top_via().and_then(|v| v.branch().map(str::to_owned)),
            inv.top_via().and_then(|v| v.branch().map(str::to_owned))
        );
        let retry = &out[1];
        assert_eq!(retry.method, Method::Invite);
        assert_eq!(retry.cseq().map(|c| c.seq), Some(2));
        assert_eq!(retry.call_id(), inv.call_id());
        assert_eq!(retry.from_tag(), inv.from_tag());
        let creds = Credentials::parse(
            retry
                .headers
                .get(&HeaderName::ProxyAuthorization)
                .expect("credentials"),
        )
        .expect("parse");
        assert!(creds.verify("INVITE", "secret"));
        assert_eq!(creds.username, "1001");

        // A second challenge fails the call instead of looping.
        u.handle_datagram(t0 + Duration::from_millis(9), &{
            let mut r = Response::for_request(retry, StatusCode::PROXY_AUTH_REQUIRED);
            r.set_to_tag("x2");
            r.headers
                .push(HeaderName::ProxyAuthenticate, challenge.to_header_value());
            r.to_bytes()
        });
        assert_eq!(sent(&mut u)[0].method, Method::Ack);
        assert!(matches!(
            events(&mut u)[..],
            [CallEvent::Failed {
                failure: Failure::Auth(407),
                ..
            }]
        ));
        assert_eq!(u.active_calls(), 0);
    }

    #[test]
    fn challenge_without_password_fails() {
        let t0 = Instant::now();
        let mut u = uac(None);
        u.start_call(t0, CallHandle(1), "1002", SDP.to_vec());
        let inv = sent(&mut u).remove(0);
        let mut r = Response::for_request(&inv, StatusCode::UNAUTHORIZED);
        r.set_to_tag("x");
        r.headers.push(
            HeaderName::WwwAuthenticate,
            "Digest realm=\"p\", nonce=\"n\"",
        );
        u.handle_datagram(t0, &r.to_bytes());
        assert!(matches!(
            events(&mut u)[..],
            [CallEvent::Failed {
                failure: Failure::Auth(401),
                ..
            }]
        ));
    }

    #[test]
    fn rejection_is_acked_and_reported() {
        let t0 = Instant::now();
        let mut u = uac(None);
        u.start_call(t0, CallHandle(3), "999", SDP.to_vec());
        let inv = sent(&mut u).remove(0);
        u.handle_datagram(t0 + Duration::from_millis(4), &reply(&inv, 404, None));
        assert_eq!(sent(&mut u)[0].method, Method::Ack);
        assert_eq!(
            events(&mut u),
            vec![CallEvent::Failed {
                call: CallHandle(3),
                failure: Failure::Status(404),
                after: Duration::from_millis(4)
            }]
        );
    }

    #[test]
    fn unanswered_invite_is_retransmitted_then_times_out() {
        let t0 = Instant::now();
        let mut u = uac(None);
        u.start_call(t0, CallHandle(1), "800", SDP.to_vec());
        assert_eq!(sent(&mut u).len(), 1);
        let mut at = Vec::new();
        let mut now = t0;
        while let Some(next) = u.poll_timeout() {
            now = next;
            u.handle_timeout(now);
            if !sent(&mut u).is_empty() {
                at.push(now.duration_since(t0).as_millis());
            }
        }
        assert_eq!(at, vec![500, 1_500, 3_500, 7_500]);
        assert_eq!(now.duration_since(t0), Duration::from_secs(8));
        assert!(matches!(
            events(&mut u)[..],
            [CallEvent::Failed {
                failure: Failure::Timeout,
                ..
            }]
        ));
        assert_eq!(u.retransmissions, 4);
    }

    #[test]
    fn server_bye_is_answered() {
        let t0 = Instant::now();
        let mut u = uac(None);
        u.start_call(t0, CallHandle(5), "900", SDP.to_vec());
        let inv = sent(&mut u).remove(0);
        u.handle_datagram(t0, &reply(&inv, 200, Some(b"a")));
        let ack = sent(&mut u).remove(0);
        events(&mut u);
        // The server's BYE: From/To swapped relative to our requests.
        let mut bye = Request::new(
            Method::Bye,
            Uri::parse("sip:1001@127.0.0.1:5070").expect("uri"),
        );
        bye.headers.push(
            HeaderName::Via,
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsrv1",
        );
        bye.headers.push(
            HeaderName::From,
            ack.headers.get(&HeaderName::To).expect("to"),
        );
        bye.headers.push(
            HeaderName::To,
            ack.headers.get(&HeaderName::From).expect("from"),
        );
        bye.headers
            .push(HeaderName::CallId, ack.call_id().expect("call-id"));
        bye.headers.push(HeaderName::CSeq, "1 BYE");
        u.handle_datagram(t0 + Duration::from_secs(1), &bye.to_bytes());
        let r = sent_responses(&mut u);
        assert_eq!(r[0].status, StatusCode::OK);
        assert_eq!(
            events(&mut u),
            vec![CallEvent::RemoteHangup {
                call: CallHandle(5)
            }]
        );
        // Its retransmission no longer matches a call.
        u.handle_datagram(t0 + Duration::from_secs(2), &bye.to_bytes());
        assert_eq!(
            sent_responses(&mut u)[0].status,
            StatusCode::CALL_DOES_NOT_EXIST
        );
    }

    #[test]
    fn our_bye_retransmits_until_answered() {
        let t0 = Instant::now();
        let mut u = uac(None);
        u.start_call(t0, CallHandle(2), "800", SDP.to_vec());
        let inv = sent(&mut u).remove(0);
        // Hang up while ringing: the BYE follows the answer.
        u.hang_up(t0, CallHandle(2));
        u.handle_datagram(t0, &reply(&inv, 180, None));
        u.handle_datagram(
            t0 + Duration::from_millis(50),
            &reply(&inv, 200, Some(b"a")),
        );
        let out = sent(&mut u);
        assert_eq!(
            out.iter().map(|r| r.method.clone()).collect::<Vec<_>>(),
            vec![Method::Ack, Method::Bye]
        );
        let bye = out[1].clone();
        u.handle_timeout(t0 + Duration::from_millis(550));
        assert_eq!(sent(&mut u)[0].method, Method::Bye);
        let ok = Response::for_request(&bye, StatusCode::OK).to_bytes();
        u.handle_datagram(t0 + Duration::from_millis(600), &ok);
        let ev = events(&mut u);
        assert_eq!(
            ev.last(),
            Some(&CallEvent::Ended {
                call: CallHandle(2),
                answered: true
            })
        );
        assert_eq!(u.active_calls(), 0);
        assert_eq!(u.poll_timeout().map(|t| t > t0), Some(true));
        u.handle_timeout(t0 + Duration::from_secs(60));
        assert!(sent(&mut u).is_empty());
    }

    #[test]
    fn reinvite_and_info_get_200() {
        let t0 = Instant::now();
        let mut u = uac(None);
        u.start_call(t0, CallHandle(4), "800", SDP.to_vec());
        let inv = sent(&mut u).remove(0);
        u.handle_datagram(t0, &reply(&inv, 200, Some(b"a")));
        let ack = sent(&mut u).remove(0);
        for (method, body) in [(Method::Invite, true), (Method::Info, false)] {
            let mut r = Request::new(
                method.clone(),
                Uri::parse("sip:1001@127.0.0.1:5070").expect("uri"),
            );
            r.headers.push(
                HeaderName::Via,
                "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKre",
            );
            r.headers.push(
                HeaderName::From,
                ack.headers.get(&HeaderName::To).expect("to"),
            );
            r.headers.push(
                HeaderName::To,
                ack.headers.get(&HeaderName::From).expect("from"),
            );
            r.headers
                .push(HeaderName::CallId, ack.call_id().expect("call-id"));
            r.headers.push(HeaderName::CSeq, format!("9 {method}"));
            u.handle_datagram(t0, &r.to_bytes());
            let resp = sent_responses(&mut u).remove(0);
            assert_eq!(resp.status, StatusCode::OK);
            assert_eq!(!resp.body.is_empty(), body);
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_datagram(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let t0 = Instant::now();
            let mut u = uac(Some("pw"));
            u.start_call(t0, CallHandle(1), "800", SDP.to_vec());
            u.handle_datagram(t0, &data);
            u.handle_timeout(t0 + Duration::from_secs(1));
        }

        #[test]
        fn never_panics_on_mangled_responses(status in 100u16..700, cut in 0usize..400, flip in 0usize..400) {
            let t0 = Instant::now();
            let mut u = uac(Some("pw"));
            u.start_call(t0, CallHandle(1), "800", SDP.to_vec());
            let inv = sent(&mut u).remove(0);
            let mut bytes = reply(&inv, status, Some(b"x"));
            if flip < bytes.len() { bytes[flip] ^= 0x20; }
            bytes.truncate(bytes.len().saturating_sub(cut));
            u.handle_datagram(t0, &bytes);
            u.handle_timeout(t0 + Duration::from_secs(40));
        }
    }
}
