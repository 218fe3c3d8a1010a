//! Fuzzes `TransactionLayer`: arbitrary datagrams interleaved with time steps
//! and with what a transaction user does (answer requests, start client
//! transactions), all on synthetic time.
//!
//! The input is a little program: each op starts with a byte choosing
//! - a raw datagram (any bytes) from one of three peers (two UDP, one TCP);
//! - a well-formed request from a template (method, branch, CSeq, tags vary),
//!   so retransmissions, ACKs and CANCELs hit live transactions;
//! - a response to one of our client transactions (any status);
//! - the user answering a pending server transaction (any status);
//! - the user starting a client transaction;
//! - a jump of the clock, or a step to the next deadline.
//!
//! Checked: nothing panics; everything the layer transmits in reaction to
//! well-formed input parses; and after the clock runs on for 10 minutes
//! (stepping through every deadline, as the runtime does) the layer is empty
//! — no transaction is ever stuck.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use palaver_sip::{
    ConnId, HeaderName, Method, Peer, Request, Response, SipMessage, StatusCode, TransactionConfig,
    TransactionLayer, Transport, TxEvent, TxKey, Uri, parse_message,
};

/// Reads the op program; every read past the end yields zero.
struct Program<'a> {
    data: &'a [u8],
}

impl Program<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
}

fn peers() -> [Peer; 3] {
    let a = SocketAddr::from(([127, 0, 0, 1], 5070));
    let b = SocketAddr::from(([127, 0, 0, 2], 5080));
    [
        Peer::udp(a),
        Peer::udp(b),
        Peer {
            transport: Transport::Tcp,
            addr: SocketAddr::from(([127, 0, 0, 1], 40000)),
            conn: Some(ConnId(1)),
        },
    ]
}

const METHODS: [Method; 7] = [
    Method::Invite,
    Method::Ack,
    Method::Cancel,
    Method::Bye,
    Method::Options,
    Method::Register,
    Method::Info,
];

const STATUSES: [u16; 10] = [100, 180, 183, 200, 202, 401, 407, 486, 487, 503];

fn status(p: &mut Program) -> StatusCode {
    let b = p.byte();
    if b < 200 {
        StatusCode(STATUSES[usize::from(b) % STATUSES.len()])
    } else {
        StatusCode(100 + p.u16() % 600)
    }
}

/// A well-formed request as a peer would send it.
fn template_request(p: &mut Program, peer: Peer) -> Vec<u8> {
    let method = &METHODS[usize::from(p.byte()) % METHODS.len()];
    let branch = p.byte() % 4;
    let cseq = u32::from(p.byte() % 4) + 1;
    let call = p.byte() % 3;
    let flags = p.byte();
    let to_tag = if flags & 1 != 0 { ";tag=srv" } else { "" };
    // RFC 2543 peers send branches without the magic cookie.
    let branch = if flags & 2 != 0 {
        format!("legacy{branch}")
    } else {
        format!("z9hG4bKp{branch}")
    };
    let max_forwards = if flags & 4 != 0 { 0 } else { 70 };
    let body: &[u8] = if flags & 8 != 0 {
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    } else {
        b""
    };
    let mut text = format!(
        "{method} sip:1002@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/{} {};branch={branch};rport\r\n\
         Max-Forwards: {max_forwards}\r\n\
         From: <sip:1001@127.0.0.1>;tag=peer{call}\r\n\
         To: <sip:1002@127.0.0.1>{to_tag}\r\n\
         Call-ID: call-{call}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:1001@{}>\r\n\
         Content-Length: {}\r\n\r\n",
        peer.transport.via_name(),
        peer.addr,
        peer.addr,
        body.len()
    )
    .into_bytes();
    text.extend_from_slice(body);
    text
}

/// A request the user sends (a client transaction).
fn our_request(method: Method, n: u64, peer: Peer) -> Option<Request> {
    let uri = Uri::parse("sip:1002@127.0.0.1:5070").ok()?;
    let mut r = Request::new(method.clone(), uri);
    r.headers.push(
        HeaderName::Via,
        format!(
            "SIP/2.0/{} 127.0.0.1:5060;branch=z9hG4bKc{n};rport",
            peer.transport.via_name()
        ),
    );
    r.headers.push(HeaderName::MaxForwards, "70");
    r.headers.push(
        HeaderName::From,
        format!("<sip:palaver@127.0.0.1>;tag=u{n}"),
    );
    r.headers.push(HeaderName::To, "<sip:1002@127.0.0.1>");
    r.headers.push(HeaderName::CallId, format!("ours-{n}"));
    r.headers.push(HeaderName::CSeq, format!("1 {method}"));
    Some(r)
}

struct Harness {
    layer: TransactionLayer,
    now: Instant,
    /// Server transactions reported to the user, oldest first.
    requests: Vec<(TxKey, Request)>,
    /// Our client transactions: the request and where it went.
    sent: Vec<(Request, Peer)>,
    next_client: u64,
}

impl Harness {
    /// Drains outputs like the runtime. `check_output`: everything sent must
    /// parse (not for replies to malformed input, which echo what they got).
    fn drain(&mut self, mut check_output: bool) {
        let mut events = Vec::new();
        while let Some(e) = self.layer.poll_event() {
            events.push(e);
        }
        for e in events {
            match e {
                TxEvent::Request { key, request, .. } => self.requests.push((key, request)),
                TxEvent::Malformed { .. } => check_output = false,
                TxEvent::Ack { request, .. } | TxEvent::Cancelled { request, .. } => {
                    let _ = request.call_id();
                }
                TxEvent::Response { response, .. } => {
                    let _ = response.to_tag();
                }
                TxEvent::Timeout { .. } | TxEvent::AckTimeout { .. } => {}
            }
        }
        while let Some(t) = self.layer.poll_transmit() {
            if check_output && let Err(e) = parse_message(&t.data, true) {
                panic!(
                    "the layer sent something that does not parse ({}): {:?}",
                    e.reason,
                    String::from_utf8_lossy(&t.data)
                );
            }
        }
    }

    fn step(&mut self, p: &mut Program, peers: &[Peer; 3]) {
        let op = p.byte() % 10;
        match op {
            0..=2 => {
                let peer = peers[usize::from(p.byte()) % peers.len()];
                let len = usize::from(p.u16() % 2048);
                let data = p.bytes(len).to_vec();
                self.layer.handle_datagram(self.now, peer, &data);
                self.drain(true);
            }
            3 | 4 => {
                let peer = peers[usize::from(p.byte()) % peers.len()];
                let data = template_request(p, peer);
                self.layer.handle_datagram(self.now, peer, &data);
                self.drain(true);
            }
            5 => {
                if self.sent.is_empty() {
                    return;
                }
                let i = usize::from(p.byte()) % self.sent.len();
                let st = status(p);
                let with_tag = p.byte() & 1 != 0;
                let (req, peer) = &self.sent[i];
                let mut resp = Response::for_request(req, st);
                if with_tag {
                    resp.set_to_tag("remote");
                }
                let (bytes, peer) = (resp.to_bytes(), *peer);
                self.layer.handle_datagram(self.now, peer, &bytes);
                self.drain(true);
            }
            6 => {
                if self.requests.is_empty() {
                    return;
                }
                let i = usize::from(p.byte()) % self.requests.len();
                let st = status(p);
                let (key, req) = &self.requests[i];
                let mut resp = Response::for_request(req, st);
                if st.0 > 100 {
                    resp.set_to_tag("srv");
                }
                // Errors (already answered, gone) are the user's to handle.
                let _ = self.layer.send_response(self.now, *key, resp);
                if !self.layer.is_pending(*key) {
                    self.requests.remove(i);
                }
                self.drain(true);
            }
            7 => {
                let method = METHODS[usize::from(p.byte()) % METHODS.len()].clone();
                let peer = peers[usize::from(p.byte()) % peers.len()];
                let n = self.next_client;
                self.next_client += 1;
                if let Some(req) = our_request(method, n, peer)
                    && self.layer.send_request(self.now, peer, req.clone()).is_ok()
                {
                    self.sent.push((req, peer));
                }
                self.drain(true);
            }
            8 => {
                // Up to ~35 minutes, mostly short steps.
                let b = p.byte();
                let ms = u64::from(b) * u64::from(b) * 32;
                self.now += Duration::from_millis(ms);
                self.layer.handle_timeout(self.now);
                self.drain(true);
            }
            _ => {
                if let Some(at) = self.layer.poll_timeout() {
                    self.now = self.now.max(at);
                    self.layer.handle_timeout(self.now);
                    self.drain(true);
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let peers = peers();
    let mut h = Harness {
        layer: TransactionLayer::new(TransactionConfig::default()),
        now: Instant::now(),
        requests: Vec::new(),
        sent: Vec::new(),
        next_client: 0,
    };
    let mut p = Program { data };
    let mut ops = 0;
    while !p.data.is_empty() && ops < 256 {
        h.step(&mut p, &peers);
        ops += 1;
    }

    // The user stops answering; the layer must wind everything down itself.
    let end = h.now + Duration::from_secs(600);
    let mut fired = 0u32;
    while let Some(at) = h.layer.poll_timeout() {
        if at > end {
            break;
        }
        h.now = h.now.max(at);
        h.layer.handle_timeout(h.now);
        h.drain(true);
        fired += 1;
        assert!(fired < 1_000_000, "deadlines never run out");
    }
    h.now = end;
    h.layer.handle_timeout(end);
    assert!(
        h.layer.is_empty(),
        "{} transactions still alive 10 minutes after the last input: {:#?}",
        h.layer.len(),
        h.layer
    );
});
