//! Bugs the cargo-fuzz targets (`fuzz/fuzz_targets/sip_*.rs`) found, each
//! reduced by hand to the smallest input that shows it. Each test states the
//! behaviour we want; until the bug is fixed it fails.

use std::net::SocketAddr;

use palaver_sip::{Dialog, Message, Method, Peer, Uri, parse_message};

/// `parse_request` checks the version with `v[..4]` (parse.rs, the
/// `VERSION_NOT_SUPPORTED` branch): a byte slice of a `&str`, which panics
/// when byte 4 falls inside a multi-byte character. One datagram is enough;
/// the UDP reader thread of `palaver-sip-rt` calls `parse_message` and dies.
#[test]
fn request_line_with_multibyte_version_is_an_error_not_a_panic() {
    // Version token "1..Њ": bytes 3..5 are one character.
    let datagram = "A a 1..\u{40a}\n\n".as_bytes();
    assert!(parse_message(datagram, true).is_err());
    assert!(parse_message(datagram, false).is_err());

    let full = "INVITE sip:a@127.0.0.1 SIP/\u{520}x\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
        From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\n\
        Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    assert!(parse_message(full.as_bytes(), true).is_err());
}

/// A URI parameter with an empty value (`;transport=`) — or one holding a
/// character outside the token set, such as `;x=a,b` — parses, but
/// `Display for Uri` writes it with `write_params` (text.rs), which quotes
/// such values for header parameters; a quoted string is not legal in a
/// URI, and `Uri::parse` rejects the `"`. So the URI we write is one we (and
/// the peer) cannot read.
#[test]
fn uri_parameters_write_back_as_a_uri_that_parses() {
    for text in [
        "sip:1001@127.0.0.1:5070;transport=",
        "sip:1001@127.0.0.1:5070;x=a,b",
        "sip:1001@127.0.0.1:5070;x=(y)",
    ] {
        let uri = Uri::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let written = uri.to_string();
        let again = Uri::parse(&written);
        assert!(again.is_ok(), "{text} was written as {written}: {again:?}");
    }
}

/// The same bug seen from a call: the caller's Contact carries `;transport=`,
/// becomes the dialog's remote target, and our BYE's Request-URI then does
/// not parse.
#[test]
fn bye_to_a_contact_with_an_empty_uri_parameter_parses() {
    let invite = "INVITE sip:1002@127.0.0.1:5060 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:1001@127.0.0.1>;tag=caller\r\n\
        To: <sip:1002@127.0.0.1>\r\n\
        Call-ID: empty-param@127.0.0.1\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:1001@127.0.0.1:5070;transport=>\r\n\
        Content-Length: 0\r\n\r\n";
    let Ok(Message::Request(req)) = parse_message(invite.as_bytes(), true) else {
        panic!("the INVITE itself parses");
    };
    let peer = Peer::udp(SocketAddr::from(([127, 0, 0, 1], 5070)));
    let contact = Uri::new(Some("palaver"), "127.0.0.1", Some(5060));
    let mut dialog = Dialog::uas(&req, "callee", contact, peer).expect("a dialog");
    let bye = dialog.new_request(Method::Bye, "127.0.0.1:5060").to_bytes();
    let parsed = parse_message(&bye, true);
    assert!(
        parsed.is_ok(),
        "{parsed:?}: {}",
        String::from_utf8_lossy(&bye)
    );
}

/// RFC 3261 §7.3.1 allows the value to start on a continuation line
/// (`Call-ID:` then ` abc` on the next). `split_head` (parse.rs) appends
/// `' ' + continuation` to the empty value, leaving a leading space: the
/// Call-ID is then rejected as malformed (it contains whitespace), and any
/// other header keeps a value that re-parses differently.
#[test]
fn header_value_starting_on_a_continuation_line_has_no_leading_space() {
    let text = "OPTIONS sip:127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-fold\r\n\
        From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\n\
        Call-ID:\r\n folded@127.0.0.1\r\n\
        CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let parsed = parse_message(text.as_bytes(), true);
    let Ok(Message::Request(req)) = parsed else {
        panic!("a folded Call-ID is legal: {parsed:?}");
    };
    assert_eq!(
        palaver_sip::SipMessage::call_id(&req),
        Some("folded@127.0.0.1")
    );
}

/// `TransactionLayer::send_request` (transaction.rs) calls `schedule` for
/// the new transaction's timers *before* inserting the transaction into
/// `txs`. When that push makes `schedule` compact the timer heap (more than
/// 64 entries and more than 8 per live transaction — e.g. after a burst of
/// completed transactions left their stale Timer F entries behind),
/// `compact_timers` finds no transaction for the new key and drops its
/// timers: the request is never retransmitted over UDP and never times out,
/// and the transaction stays in the layer for ever.
#[test]
fn client_transaction_started_after_a_burst_still_retransmits_and_times_out() {
    use std::time::{Duration, Instant};

    use palaver_sip::{
        HeaderName, Request, Response, StatusCode, TransactionConfig, TransactionLayer, TxEvent,
    };

    let peer = Peer::udp(SocketAddr::from(([127, 0, 0, 1], 5070)));
    let request = |method: Method, n: u32| {
        let mut r = Request::new(
            method.clone(),
            Uri::parse("sip:1002@127.0.0.1:5070").expect("a valid URI"),
        );
        r.headers.push(
            HeaderName::Via,
            format!("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKburst{n}"),
        );
        r.headers.push(HeaderName::MaxForwards, "70");
        r.headers.push(
            HeaderName::From,
            format!("<sip:palaver@127.0.0.1>;tag=t{n}"),
        );
        r.headers.push(HeaderName::To, "<sip:1002@127.0.0.1>");
        r.headers.push(HeaderName::CallId, format!("burst-{n}"));
        r.headers.push(HeaderName::CSeq, format!("1 {method}"));
        r
    };

    let mut layer = TransactionLayer::new(TransactionConfig::default());
    let t0 = Instant::now();
    // A burst of 70 OPTIONS pings, each answered at once.
    for n in 0..70 {
        let req = request(Method::Options, n);
        layer.send_request(t0, peer, req.clone()).expect("sent");
        let ok = Response::for_request(&req, StatusCode::OK).to_bytes();
        layer.handle_datagram(t0, peer, &ok);
    }
    let t1 = t0 + Duration::from_secs(6);
    layer.handle_timeout(t1);
    while layer.poll_transmit().is_some() {}
    while layer.poll_event().is_some() {}
    assert!(layer.is_empty(), "the pings are over");

    // Now one INVITE that nobody answers.
    let key = layer
        .send_request(t1, peer, request(Method::Invite, 1000))
        .expect("sent");
    while layer.poll_transmit().is_some() {}
    assert_eq!(
        layer.poll_timeout(),
        Some(t1 + Duration::from_millis(500)),
        "Timer A is armed"
    );
    let mut retransmissions = 0;
    let mut timed_out_at = None;
    while let Some(at) = layer.poll_timeout() {
        layer.handle_timeout(at);
        while layer.poll_transmit().is_some() {
            retransmissions += 1;
        }
        while let Some(e) = layer.poll_event() {
            if matches!(e, TxEvent::Timeout { key: k } if k == key) {
                timed_out_at = Some(at);
            }
        }
    }
    assert_eq!(retransmissions, 6, "Timer A: 0.5, 1, 2, 4, 8, 16 s");
    assert_eq!(
        timed_out_at,
        Some(t1 + Duration::from_secs(32)),
        "Timer B fires at 64·T1"
    );
    assert!(layer.is_empty());
}
