//! Fuzzes offer/answer on hostile bodies: any parsed body given to `answer`
//! (as an incoming INVITE's offer) and to `accept_answer` (as the reply to our
//! offer) must return a result, never panic. Every answer we produce must
//! round-trip through text, and when it takes the offer's first enabled audio
//! line, our own offerer side must accept it with the same codec.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use palaver_sdp::{
    Direction, LocalCapabilities, MediaKind, Origin, Session, accept_answer, answer, offer,
};

fuzz_target!(|data: &[u8]| {
    let Ok(remote) = Session::parse(data) else {
        return;
    };
    let caps = LocalCapabilities::default();
    let local: SocketAddr = ([127, 0, 0, 1], 4000).into();
    let origin = Origin::new(1, 1, local.ip());

    let ours = offer(&caps, &origin, local, Direction::SendRecv);
    let _ = accept_answer(&ours, &remote);

    let first_audio = remote
        .media
        .iter()
        .position(|m| m.kind == MediaKind::Audio && m.port != 0);
    for wish in [Direction::SendRecv, Direction::SendOnly] {
        let Ok(a) = answer(&remote, &caps, &origin, local, wish) else {
            continue;
        };
        let wire = Session::parse(a.session.to_string().as_bytes()).expect("our answer must parse");
        assert_eq!(wire, a.session, "our answer does not round-trip");
        if first_audio == Some(a.negotiated.media_index) {
            let back = accept_answer(&remote, &wire).expect("our answer must be acceptable");
            assert_eq!(back.codec.codec, a.negotiated.codec.codec);
            assert_eq!(back.codec.payload_type, a.negotiated.codec.payload_type);
        }
    }
});
