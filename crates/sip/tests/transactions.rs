//! Transaction state machines under synthetic time: retransmissions,
//! timeouts, ACK handling and CANCEL, all without a single sleep.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use palaver_sip::{
    HeaderName, Message, Method, Peer, Request, Response, SipMessage, StatusCode,
    TransactionConfig, TransactionLayer, TxEvent, Uri, parse_message,
};

fn peer() -> Peer {
    Peer::udp("127.0.0.1:5070".parse::<SocketAddr>().unwrap())
}

fn request(method: Method, branch: &str) -> Request {
    let mut r = Request::new(
        method.clone(),
        Uri::parse("sip:1002@127.0.0.1:5070").unwrap(),
    );
    r.headers.push(
        HeaderName::Via,
        format!("SIP/2.0/UDP 127.0.0.1:5060;branch={branch}"),
    );
    r.headers.push(HeaderName::MaxForwards, "70");
    r.headers
        .push(HeaderName::From, "<sip:1001@127.0.0.1>;tag=f1");
    r.headers.push(HeaderName::To, "<sip:1002@127.0.0.1>");
    r.headers.push(HeaderName::CallId, format!("cid-{branch}"));
    r.headers.push(HeaderName::CSeq, format!("1 {method}"));
    r
}

fn parsed(bytes: &[u8]) -> Message {
    parse_message(bytes, true).unwrap()
}

fn drain(layer: &mut TransactionLayer) -> Vec<Message> {
    let mut v = Vec::new();
    while let Some(t) = layer.poll_transmit() {
        v.push(parsed(&t.data));
    }
    v
}

fn events(layer: &mut TransactionLayer) -> Vec<TxEvent> {
    let mut v = Vec::new();
    while let Some(e) = layer.poll_event() {
        v.push(e);
    }
    v
}

/// Runs the layer's clock from `start` to `until`, following poll_timeout.
/// Returns the times at which something was transmitted.
fn run_clock(layer: &mut TransactionLayer, start: Instant, until: Instant) -> Vec<Duration> {
    let mut sent = Vec::new();
    while let Some(at) = layer.poll_timeout() {
        if at > until {
            break;
        }
        layer.handle_timeout(at);
        while layer.poll_transmit().is_some() {
            sent.push(at - start);
        }
    }
    sent
}

#[test]
fn invite_client_timer_a_then_timer_b_without_waiting() {
    let mut l = TransactionLayer::new(TransactionConfig::default());
    let t0 = Instant::now();
    let key = l
        .send_request(t0, peer(), request(Method::Invite, "z9hG4bKa"))
        .unwrap();
    assert_eq!(drain(&mut l).len(), 1);
    let sent = run_clock(&mut l, t0, t0 + Duration::from_secs(40));
    let ms: Vec<u128> = sent.iter().map(|d| d.as_millis()).collect();
    // Timer A: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s.
    assert_eq!(ms, vec![500, 1500, 3500, 7500, 15500, 31500]);
    let ev = events(&mut l);
    assert!(matches!(ev.as_slice(), [TxEvent::Timeout { key: k }] if *k == key));
    assert!(l.is_empty());
}

#[test]
fn non_invite_client_timer_e_caps_at_t2() {
    let mut l = TransactionLayer::new(TransactionConfig::default());
    let t0 = Instant::now();
    l.send_request(t0, peer(), request(Method::Options, "z9hG4bKe"))
        .unwrap();
    drain(&mut l);
    let sent = run_clock(&mut l, t0, t0 + Duration::from_secs(40));
    let gaps: Vec<u128> = sent.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
    assert!(gaps.iter().all(|g| *g <= 4000), "{gaps:?}");
    assert_eq!(sent[0].as_millis(), 500);
    assert!(matches!(
        events(&mut l).as_slice(),
        [TxEvent::Timeout { .. }]
    ));
    assert!(l.is_empty());
}

#[test]
fn reliable_transport_does_not_retransmit() {
    let mut l = TransactionLayer::new(TransactionConfig::default());
    let t0 = Instant::now();
    let mut p = peer();
    p.transport = palaver_sip::Transport::Tcp;
    l.send_request(t0, p, request(Method::Invite, "z9hG4bKt"))
        .unwrap();
    drain(&mut l);
    let sent = run_clock(&mut l, t0, t0 + Duration::from_secs(40));
    assert!(sent.is_empty());
    assert!(matches!(
        events(&mut l).as_slice(),
        [TxEvent::Timeout { .. }]
    ));
}

#[test]
fn invite_client_non_2xx_is_acked_with_same_branch_and_reacked() {
    let mut l = TransactionLayer::new(TransactionConfig::default());
    let t0 = Instant::now();
    let req = request(Method::Invite, "z9hG4bKn");
    l.send_request(t0, peer(), req.clone()).unwrap();
    drain(&mut l);
    let mut busy = Response::for_request(&req, StatusCode::BUSY_HERE);
    busy.set_to_tag("callee");
    l.handle_datagram(t0, peer(), &busy.to_bytes());
    let out = drain(&mut l);
    let Message::Request(ack) = &out[0] else {
        panic!()
    };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.top_via().unwrap().branch(), Some("z9hG4bKn"));
    assert_eq!(ack.to_tag().as_deref(), Some("callee"));
    assert!(matches!(
        events(&mut l).as_slice(),
        [TxEvent::Response { .. }]
    ));
    // The 486 is retransmitted: ACK again, no second event.
    l.handle_datagram(t0 + Duration::from_millis(500), peer(), &busy.to_bytes());
    assert_eq!(drain(&mut l).len(), 1);
    assert!(events(&mut l).is_empty());
    run_clock(&mut l, t0, t0 + Duration::from_secs(40));
    assert!(l.is_empty());
}

#[test]
fn invite_server_sends_100_then_retransmits_2xx_until_ack() {
    let mut l = TransactionLayer::new(TransactionConfig::default());
    let t0 = Instant::now();
    let req = request(Method::Invite, "z9hG4bKs");
    l.handle_datagram(t0, peer(), &req.to_bytes());
    let out = drain(&mut l);
    assert!(matches!(&out[..], [Message::Response(r)] if r.status == StatusCode::TRYING));
    let ev = events(&mut l);
    let TxEvent::Request { key, .. } = &ev[0] else {
        panic!()
    };
    let mut ok = Response::for_request(&req, StatusCode::OK);
    ok.set_to_tag("srv");
    l.send_response(t0, *key, ok).unwrap();
    assert_eq!(drain(&mut l).len(), 1);
    // Two retransmissions (0.5 s, 1.5 s) before the ACK arrives at 2 s.
    let sent = run_clock(&mut l, t0, t0 + Duration::from_secs(2));
    assert_eq!(sent.len(), 2);
    let mut ack = request(Method::Ack, "z9hG4bKother");
    ack.headers.set(HeaderName::CallId, "cid-z9hG4bKs");
    ack.headers
        .set(HeaderName::To, "<sip:1002@127.0.0.1>;tag=srv");
    l.handle_datagram(t0 + Duration::from_secs(2), peer(), &ack.to_bytes());
    let ev = events(&mut l);
    assert!(matches!(&ev[..], [TxEvent::Ack { acked: Some(k), .. }] if k == key));
    assert!(run_clock(&mut l, t0, t0 + Duration::from_secs(60)).is_empty());
    assert!(l.is_empty());
}

#[test]
fn unacknowledged_2xx_raises_ack_timeout() {
    let mut l = TransactionLayer::new(TransactionConfig::default());
    let t0 = Instant::now();
    let req = request(Method::Invite, "z9hG4bKu");
    l.handle_datagram(t0, peer(), &req.to_bytes());
    drain(&mut l);
    let ev = events(&mut l);
    let TxEvent::Request { key, .. } = &ev[0] else {
        panic!()
    };
    let mut ok = Response::for_request(&req, StatusCode::OK);
    ok.set_to_tag("srv");
    l.send_response(t0, *key, ok).unwrap();
    run_clock(&mut l, t0, t0 + Duration::from_secs(40));
    assert!(matches!(&events(&mut l)[..], [TxEvent::AckTimeout { key: k }] if k == key));
    assert!(l.is_empty());
}

#[test]
fn invite_server_non_2xx_absorbs_ack() {
    let mut l = TransactionLayer::new(TransactionConfig::default());
    let t0 = Instant::now();
    let req = request(Method::Invite, "z9hG4bKr");
    l.handle_datagram(t0, peer(), &req.to_bytes());
    drain(&mut l);
    let ev = events(&mut l);
    let TxEvent::Request { key, .. } = &ev[0] else {
        panic!()
    };
    let mut busy = Response::for_request(&req, StatusCode::BUSY_HERE);
    busy.set_to_tag("srv");
    l.send_response(t0, *key, busy).unwrap();
    drain(&mut l);
    let mut ack = request(Method::Ack, "z9hG4bKr");
    ack.headers.set(HeaderName::CSeq, "1 ACK");
    l.handle_datagram(t0 + Duration::from_millis(100), peer(), &ack.to_bytes());
    assert!(
        events(&mut l).is_empty(),
        "the ACK of a non-2xx stays in the layer"
    );
    assert!(run_clock(&mut l, t0, t0 + Duration::from_secs(60)).is_empty());
    assert!(l.is_empty());
}

#[test]
fn cancel_is_answered_and_reported() {
    let mut l = TransactionLayer::new(TransactionConfig::default());
    let t0 = Instant::now();
    let req = request(Method::Invite, "z9hG4bKc");
    l.handle_datagram(t0, peer(), &req.to_bytes());
    drain(&mut l);
    let ev = events(&mut l);
    let TxEvent::Request { key, .. } = &ev[0] else {
        panic!()
    };
    let mut cancel = request(Method::Cancel, "z9hG4bKc");
    cancel.headers.set(HeaderName::CSeq, "1 CANCEL");
    l.handle_datagram(t0, peer(), &cancel.to_bytes());
    let out = drain(&mut l);
    assert!(
        matches!(&out[..], [Message::Response(r)] if r.status == StatusCode::OK && r.cseq().unwrap().method == Method::Cancel)
    );
    assert!(matches!(&events(&mut l)[..], [TxEvent::Cancelled { invite, .. }] if invite == key));
    let mut term = Response::for_request(&req, StatusCode::REQUEST_TERMINATED);
    term.set_to_tag("srv");
    l.send_response(t0, *key, term).unwrap();
    // CANCEL for an unknown INVITE: 481.
    let mut stray = request(Method::Cancel, "z9hG4bKnone");
    stray.headers.set(HeaderName::CSeq, "1 CANCEL");
    l.handle_datagram(t0, peer(), &stray.to_bytes());
    let out = drain(&mut l);
    assert!(
        out.iter().any(
            |m| matches!(m, Message::Response(r) if r.status == StatusCode::CALL_DOES_NOT_EXIST)
        )
    );
    run_clock(&mut l, t0, t0 + Duration::from_secs(60));
    assert!(l.is_empty());
}

#[test]
fn retransmitted_request_is_absorbed_and_reanswered() {
    let mut l = TransactionLayer::new(TransactionConfig::default());
    let t0 = Instant::now();
    let req = request(Method::Options, "z9hG4bKo");
    l.handle_datagram(t0, peer(), &req.to_bytes());
    let ev = events(&mut l);
    let TxEvent::Request { key, .. } = &ev[0] else {
        panic!()
    };
    // Retransmission before we answer: nothing.
    l.handle_datagram(t0, peer(), &req.to_bytes());
    assert!(events(&mut l).is_empty());
    assert!(drain(&mut l).is_empty());
    l.send_response(t0, *key, Response::for_request(&req, StatusCode::OK))
        .unwrap();
    assert_eq!(drain(&mut l).len(), 1);
    l.handle_datagram(t0, peer(), &req.to_bytes());
    assert_eq!(drain(&mut l).len(), 1);
    assert!(events(&mut l).is_empty());
}

#[test]
fn forgotten_request_is_answered_500_by_the_layer() {
    let mut l = TransactionLayer::new(TransactionConfig::default());
    let t0 = Instant::now();
    l.handle_datagram(t0, peer(), &request(Method::Options, "z9hG4bKf").to_bytes());
    events(&mut l);
    run_clock(&mut l, t0, t0 + Duration::from_secs(120));
    // The 500 went out (collected by run_clock) and the transaction is gone.
    assert!(l.is_empty());
}

#[test]
fn proceeding_invite_client_stops_retransmitting() {
    let mut l = TransactionLayer::new(TransactionConfig::default());
    let t0 = Instant::now();
    let req = request(Method::Invite, "z9hG4bKp");
    l.send_request(t0, peer(), req.clone()).unwrap();
    drain(&mut l);
    l.handle_datagram(
        t0 + Duration::from_millis(100),
        peer(),
        &Response::for_request(&req, StatusCode::TRYING).to_bytes(),
    );
    let sent = run_clock(&mut l, t0, t0 + Duration::from_secs(20));
    assert!(sent.is_empty());
    let mut ok = Response::for_request(&req, StatusCode::OK);
    ok.set_to_tag("x");
    l.handle_datagram(t0 + Duration::from_secs(20), peer(), &ok.to_bytes());
    // 2xx retransmissions reach the user too (it re-sends its ACK).
    l.handle_datagram(t0 + Duration::from_secs(21), peer(), &ok.to_bytes());
    let ev = events(&mut l);
    assert_eq!(ev.iter().filter(|e| matches!(e, TxEvent::Response { response, .. } if response.status == StatusCode::OK)).count(), 2);
}
