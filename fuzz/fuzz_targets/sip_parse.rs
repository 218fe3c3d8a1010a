//! Fuzzes `parse_message` on one UDP datagram, the way the server reads it.
//!
//! Checked for every input:
//! - parsing never panics (datagram and stream flavour);
//! - whatever parses serialises to bytes that parse again, to the same
//!   message (up to `Content-Length`, which is rewritten from the body), and
//!   a second serialisation is byte-for-byte the first;
//! - the accessors every layer above uses (Call-ID, CSeq, tags, Vias,
//!   Contacts, routes, Expires, Max-Forwards) never panic on a parsed message;
//! - what the server builds from a parsed request — a response, a dialog and
//!   the in-dialog requests and ACK it sends — serialises to bytes that parse;
//! - a parse error's reply context gives a response that serialises.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use palaver_sip::{
    Dialog, HeaderName, Message, Method, Peer, Response, SipMessage, StatusCode, Uri, parse_message,
};

/// An INVITE as the server sends it, for the UAC-side dialog checks.
const OUR_INVITE: &[u8] = b"INVITE sip:1002@127.0.0.1:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKfuzz;rport\r\nMax-Forwards: 70\r\n\
From: <sip:1001@127.0.0.1>;tag=ours\r\nTo: <sip:1002@127.0.0.1>\r\nCall-ID: fuzz-call\r\n\
CSeq: 1 INVITE\r\nContact: <sip:palaver@127.0.0.1:5060>\r\nContent-Length: 0\r\n\r\n";

fn exercise_accessors<M: SipMessage>(m: &M) {
    let _ = m.call_id();
    let _ = m.cseq();
    let _ = m.from_tag();
    let _ = m.to_tag();
    let _ = m.vias();
    let _ = m.top_via().map(|v| (v.branch().map(str::len), v.sent_by()));
    for c in m.contacts() {
        let _ = c.expires();
    }
    let _ = m.expires();
    let _ = m.content_type();
    let _ = m.record_routes();
}

/// The serialiser writes one `Content-Length`, last, computed from the body
/// (a datagram may have none, or several agreeing ones): compare without it.
fn without_content_length(m: &Message) -> Message {
    let mut m = m.clone();
    match &mut m {
        Message::Request(r) => r.headers.remove(&HeaderName::ContentLength),
        Message::Response(r) => r.headers.remove(&HeaderName::ContentLength),
    }
    m
}

fn must_parse(what: &str, bytes: &[u8]) -> Message {
    match parse_message(bytes, true) {
        Ok(m) => m,
        Err(e) => panic!(
            "{what} does not parse ({}): {:?}",
            e.reason,
            String::from_utf8_lossy(bytes)
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    // The stream flavour differs only in Content-Length handling.
    let _ = parse_message(data, false);

    let msg = match parse_message(data, true) {
        Ok(m) => m,
        Err(e) => {
            if let Some(ctx) = &e.reply {
                let resp = Response::from_reply_context(ctx, e.status, &e.reason);
                let _ = resp.to_bytes();
            }
            return;
        }
    };

    let first = msg.to_bytes();
    let again = must_parse("our serialisation", &first);
    assert_eq!(
        without_content_length(&again),
        without_content_length(&msg),
        "parse → serialise → parse changed the message"
    );
    assert_eq!(again.to_bytes(), first, "serialisation is not stable");

    match &msg {
        Message::Request(req) => {
            exercise_accessors(req);
            let _ = req.max_forwards();
            let _ = req.routes();

            let mut resp = Response::for_request(req, StatusCode::OK);
            resp.set_to_tag("fuzztag");
            must_parse("a response built for the request", &resp.to_bytes());

            if req.method == Method::Invite {
                let peer = Peer::udp(SocketAddr::from(([127, 0, 0, 1], 5070)));
                let contact = Uri::new(Some("palaver"), "127.0.0.1", Some(5060));
                if let Some(mut dialog) = Dialog::uas(req, "fuzztag", contact, peer) {
                    let _ = dialog.id();
                    let _ = dialog.matches(req);
                    let _ = dialog.accept_remote_cseq(req);
                    let bye = dialog.new_request(Method::Bye, "127.0.0.1:5060");
                    must_parse("an in-dialog BYE", &bye.to_bytes());
                    let ack = dialog.ack(1, "127.0.0.1:5060");
                    must_parse("an in-dialog ACK", &ack.to_bytes());
                }
            }
        }
        Message::Response(resp) => {
            exercise_accessors(resp);
            // The UAC side: a dialog from this response to one of our INVITEs.
            if let Ok(Message::Request(invite)) = parse_message(OUR_INVITE, true) {
                let peer = Peer::udp(SocketAddr::from(([127, 0, 0, 1], 5070)));
                if let Some(mut dialog) = Dialog::uac(&invite, resp, peer) {
                    dialog.refresh_target(resp);
                    let bye = dialog.new_request(Method::Bye, "127.0.0.1:5060");
                    must_parse("an in-dialog BYE", &bye.to_bytes());
                    let ack = dialog.ack(1, "127.0.0.1:5060");
                    must_parse("an in-dialog ACK", &ack.to_bytes());
                }
            }
        }
    }
});
