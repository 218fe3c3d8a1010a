//! Property tests of the parser: it never panics, it accepts what a grammar
//! generates, and parse → serialise → parse is the identity.

use proptest::prelude::*;

use palaver_sip::{Framed, Message, StreamFramer, parse_message};

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,15}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u8..=254, 0u8..=255, 0u8..=255, 1u8..=254)
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,2}",
        Just("[::1]".to_string()),
    ]
}

fn display() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-zA-Z ,<>;:@]{1,12}".prop_map(|d| format!("\"{}\" ", d.replace('"', "")))
    ]
}

prop_compose! {
    fn request_text()(
        method in prop_oneof![Just("INVITE"), Just("OPTIONS"), Just("REGISTER"), Just("BYE"), Just("INFO"), Just("FOO")],
        user in "[0-9]{3,6}",
        h in host(),
        port in proptest::option::of(1024u16..65535),
        branch in "[a-zA-Z0-9]{1,20}",
        tag in token(),
        cid in "[a-zA-Z0-9@.-]{1,30}",
        cseq in 1u32..2_000_000_000,
        disp in display(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        compact in any::<bool>(),
        fold in any::<bool>(),
    ) -> Vec<u8> {
        let p = port.map(|p| format!(":{p}")).unwrap_or_default();
        let via = if compact { "v" } else { "Via" };
        let subject = if fold { "Subject: a\r\n b\r\n" } else { "" };
        let mut s = format!(
            "{method} sip:{user}@{h}{p} SIP/2.0\r\n{via}: SIP/2.0/UDP {h}{p};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: {disp}<sip:{user}@{h}>;tag={tag}\r\nTo: <sip:{user}@{h}>\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} {method}\r\n{subject}Content-Length: {}\r\n\r\n",
            body.len()
        ).into_bytes();
        s.extend_from_slice(&body);
        s
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_message(&data, true);
        let _ = parse_message(&data, false);
        let mut f = StreamFramer::new();
        f.push(&data);
        for _ in 0..4 { if !matches!(f.next_message(), Ok(Some(_))) { break; } }
    }

    #[test]
    fn never_panics_on_mutated_requests(req in request_text(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut m = req.clone();
        let i = pos.index(m.len());
        m[i] = byte;
        let _ = parse_message(&m, true);
        m.truncate(i);
        let _ = parse_message(&m, true);
    }

    #[test]
    fn accepts_generated_requests_and_round_trips(req in request_text()) {
        let m = parse_message(&req, true);
        prop_assert!(m.is_ok(), "{:?}: {}", m, String::from_utf8_lossy(&req));
        let Ok(Message::Request(r)) = m else { unreachable!() };
        let again = parse_message(&r.to_bytes(), true).unwrap();
        prop_assert_eq!(Message::Request(r), again);
    }

    #[test]
    fn stream_framer_cuts_back_to_back_messages(a in request_text(), b in request_text(), split in 0usize..400) {
        let mut all = a.clone();
        all.extend_from_slice(&b);
        let split = split.min(all.len());
        let mut f = StreamFramer::new();
        f.push(&all[..split]);
        let mut got = Vec::new();
        while let Ok(Some(Framed::Message(m))) = f.next_message() { got.push(m); }
        f.push(&all[split..]);
        while let Ok(Some(Framed::Message(m))) = f.next_message() { got.push(m); }
        prop_assert_eq!(got.len(), 2);
    }
}
