//! Every malformed-input case of issue 2 (and the ones measured against
//! rsipstack in docs/decisions/0001-sip-stack.md) driven through the
//! transaction layer: what goes back on the wire, and that nothing is left
//! behind.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use palaver_sip::{
    Message, Peer, Request, Response, StatusCode, TransactionConfig, TransactionLayer, TxEvent,
    parse_message,
};

fn peer() -> Peer {
    Peer::udp("127.0.0.1:5070".parse::<SocketAddr>().unwrap())
}

const OPTIONS: &str = "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{B};rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@127.0.0.1>;tag=a1\r\n\
To: <sip:127.0.0.1:5060>\r\n\
Call-ID: call-{B}@127.0.0.1\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";

fn opts(branch: &str) -> String {
    OPTIONS.replace("{B}", branch)
}

/// Feeds `raw`, answers any request event with 200, and returns what went out.
fn exchange(raw: &[u8]) -> Vec<Response> {
    let mut layer = TransactionLayer::new(TransactionConfig::default());
    let now = Instant::now();
    layer.handle_datagram(now, peer(), raw);
    while let Some(ev) = layer.poll_event() {
        if let TxEvent::Request { key, request, .. } = ev {
            let mut r = Response::for_request(&request, StatusCode::OK);
            r.set_to_tag("srv");
            layer.send_response(now, key, r).unwrap();
        }
    }
    let mut out = Vec::new();
    while let Some(t) = layer.poll_transmit() {
        match parse_message(&t.data, true) {
            Ok(Message::Response(r)) => out.push(r),
            Ok(Message::Request(_)) => panic!("unexpected request"),
            // A 400 to a request with a broken From/To echoes it back as it
            // came, so read the status line by hand.
            Err(_) => out.push(status_line_only(&t.data)),
        }
    }
    // Nothing may stay stuck: run the clock 10 minutes on.
    layer.handle_timeout(now + Duration::from_secs(600));
    assert!(layer.is_empty(), "a transaction was left behind");
    out
}

fn status_line_only(data: &[u8]) -> Response {
    let text = String::from_utf8_lossy(data);
    let line = text.lines().next().unwrap();
    let mut it = line.splitn(3, ' ');
    assert_eq!(it.next(), Some("SIP/2.0"));
    let code: u16 = it.next().unwrap().parse().unwrap();
    Response::new(StatusCode(code)).with_reason(it.next().unwrap_or(""))
}

fn single(raw: &[u8]) -> Response {
    let mut v = exchange(raw);
    assert_eq!(v.len(), 1, "expected exactly one response, got {v:?}");
    v.remove(0)
}

#[test]
fn valid_options_reaches_the_user() {
    let r = single(opts("ok").as_bytes());
    assert_eq!(r.status, StatusCode::OK);
}

#[test]
fn folded_header_lines_are_unfolded() {
    let raw = opts("fold").replace(
        "Max-Forwards: 70\r\n",
        "Subject: hello\r\n  world\r\nMax-Forwards:\r\n 70\r\n",
    );
    let r = single(raw.as_bytes());
    assert_eq!(r.status, StatusCode::OK);
}

#[test]
fn unknown_method_gets_501_with_allow() {
    let raw = opts("foo")
        .replace("OPTIONS sip:", "FOO sip:")
        .replace("1 OPTIONS", "1 FOO");
    let r = single(raw.as_bytes());
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    assert!(
        r.headers
            .get(&palaver_sip::HeaderName::Allow)
            .unwrap()
            .contains("INVITE")
    );
}

#[test]
fn known_but_unsupported_method_gets_405() {
    let raw = opts("pub")
        .replace("OPTIONS sip:", "PUBLISH sip:")
        .replace("1 OPTIONS", "1 PUBLISH");
    let r = single(raw.as_bytes());
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.headers.get(&palaver_sip::HeaderName::Allow).is_some());
}

#[test]
fn max_forwards_zero_gets_483() {
    let raw = opts("mf0").replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(single(raw.as_bytes()).status, StatusCode::TOO_MANY_HOPS);
}

#[test]
fn tel_and_mailto_uris_get_416() {
    for scheme in ["tel:+15551234", "mailto:a@b.c"] {
        let raw = opts("tel").replace("sip:127.0.0.1:5060 SIP/2.0", &format!("{scheme} SIP/2.0"));
        let r = single(raw.as_bytes());
        assert_eq!(r.status, StatusCode::UNSUPPORTED_URI_SCHEME, "{scheme}");
    }
}

#[test]
fn wrong_version_gets_505() {
    let raw = opts("v3").replace("5060 SIP/2.0\r\n", "5060 SIP/3.0\r\n");
    let r = single(raw.as_bytes());
    assert_eq!(r.status, StatusCode::VERSION_NOT_SUPPORTED);
    // The response itself is SIP/2.0.
}

fn assert_400(raw: &str, needle: &str) {
    let r = single(raw.as_bytes());
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "for {needle}");
    assert!(
        r.reason.to_lowercase().contains(&needle.to_lowercase()),
        "reason {:?} should mention {needle:?}",
        r.reason
    );
}

#[test]
fn negative_content_length_gets_400() {
    assert_400(
        &opts("neg").replace("Content-Length: 0", "Content-Length: -5"),
        "negative Content-Length",
    );
}

#[test]
fn content_length_beyond_datagram_gets_400() {
    let raw = opts("long").replace(
        "Content-Length: 0\r\n\r\n",
        "Content-Length: 50\r\n\r\n0123456789",
    );
    assert_400(&raw, "Content-Length larger");
}

#[test]
fn cseq_method_mismatch_gets_400() {
    assert_400(
        &opts("cseq").replace("1 OPTIONS", "1 INVITE"),
        "CSeq method",
    );
}

#[test]
fn nul_byte_in_header_gets_400() {
    assert_400(
        &opts("nul").replace("Max-Forwards: 70", "Max-Forwards: 7\x000"),
        "NUL",
    );
}

#[test]
fn invalid_utf8_gets_400() {
    let mut raw = opts("utf").into_bytes();
    let pos = raw.windows(5).position(|w| w == b"Alice").unwrap();
    raw[pos] = 0xff;
    let r = single(&raw);
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.reason.contains("UTF-8"));
}

#[test]
fn unterminated_quote_gets_400() {
    assert_400(
        &opts("quote").replace("\"Alice\" <sip", "\"Alice <sip"),
        "unterminated quoted string",
    );
}

#[test]
fn missing_mandatory_headers_get_400() {
    assert_400(
        &opts("nocid").replace("Call-ID: call-nocid@127.0.0.1\r\n", ""),
        "missing Call-ID",
    );
    assert_400(
        &opts("nocseq").replace("CSeq: 1 OPTIONS\r\n", ""),
        "missing CSeq",
    );
    assert_400(
        &opts("nofrom").replace("From: \"Alice\" <sip:alice@127.0.0.1>;tag=a1\r\n", ""),
        "missing From",
    );
    assert_400(
        &opts("noto").replace("To: <sip:127.0.0.1:5060>\r\n", ""),
        "missing To",
    );
}

#[test]
fn bad_cseq_and_content_length_values() {
    assert_400(
        &opts("cs").replace("CSeq: 1 OPTIONS", "CSeq: x OPTIONS"),
        "CSeq",
    );
    assert_400(
        &opts("cl").replace("Content-Length: 0", "Content-Length: abc"),
        "Content-Length",
    );
    assert_400(
        &opts("mf").replace("Max-Forwards: 70", "Max-Forwards: lots"),
        "Max-Forwards",
    );
    assert_400(
        &opts("hl").replace("Max-Forwards: 70", "this line has no colon"),
        "no colon",
    );
}

#[test]
fn missing_via_and_garbage_are_dropped() {
    assert!(
        exchange(
            opts("novia")
                .replace(
                    "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-novia;rport\r\n",
                    ""
                )
                .as_bytes()
        )
        .is_empty()
    );
    assert!(exchange(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage").is_empty());
    assert!(exchange(b"").is_empty());
    assert!(exchange(b"\r\n\r\n").is_empty());
}

#[test]
fn malformed_ack_is_never_answered() {
    let raw = opts("ack")
        .replace("OPTIONS sip:", "ACK sip:")
        .replace("1 OPTIONS", "1 INVITE");
    assert!(exchange(raw.as_bytes()).is_empty());
}

#[test]
fn response_via_carries_received_and_rport() {
    let raw = opts("rp").replace("127.0.0.1:5070;branch", "10.9.9.9:5070;branch");
    let r = single(raw.as_bytes());
    let via = r.headers.get(&palaver_sip::HeaderName::Via).unwrap();
    assert!(via.contains("received=127.0.0.1"), "{via}");
    assert!(via.contains("rport=5070"), "{via}");
}

#[test]
fn request_round_trips_through_serialisation() {
    let m = parse_message(opts("rt").as_bytes(), true).unwrap();
    let Message::Request(req) = m else { panic!() };
    let again: Request = match parse_message(&req.to_bytes(), true).unwrap() {
        Message::Request(r) => r,
        _ => panic!(),
    };
    assert_eq!(req, again);
}
