//! Fuzzes `StreamFramer` (TCP/TLS) with arbitrary chunking.
//!
//! The input is `[n, chunk sizes…(n bytes), stream…]`. The stream is fed once
//! in one piece and once cut into the given chunk sizes (cycled), draining
//! `next_message` after every push as the runtime does. Checked: no panic,
//! and both feeds produce the same sequence of messages and errors — framing
//! must not depend on how TCP segments the bytes. (Keep-alive pings may
//! differ inside runs of stray CR/LF bytes; see below.) After an error the
//! connection is closed, so both sequences stop there.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palaver_sip::{Framed, Message, StreamFramer};

#[derive(Debug, PartialEq)]
enum Out {
    Message(Box<Message>),
    Ping,
    Error(String),
}

fn without_pings(out: Vec<Out>) -> Vec<Out> {
    out.into_iter().filter(|o| *o != Out::Ping).collect()
}

/// Drains the framer; returns false once the connection must close.
fn drain(framer: &mut StreamFramer, out: &mut Vec<Out>) -> bool {
    loop {
        match framer.next_message() {
            Ok(Some(Framed::Message(m))) => out.push(Out::Message(Box::new(m))),
            Ok(Some(Framed::KeepAlivePing)) => out.push(Out::Ping),
            Ok(None) => return true,
            Err(e) => {
                out.push(Out::Error(e.reason));
                return false;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 16).min(rest.len());
    let (sizes, stream) = rest.split_at(n);

    let mut whole = Vec::new();
    let mut framer = StreamFramer::new();
    framer.push(stream);
    drain(&mut framer, &mut whole);

    let mut chunked = Vec::new();
    let mut framer = StreamFramer::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < stream.len() {
        // Size 0 stands for "one byte", the harshest segmentation.
        let size = sizes
            .get(i % sizes.len().max(1))
            .map_or(stream.len(), |&s| usize::from(s).max(1));
        i += 1;
        let end = (pos + size).min(stream.len());
        framer.push(&stream[pos..end]);
        pos = end;
        if !drain(&mut framer, &mut chunked) {
            break;
        }
    }

    // Keep-alive pings are compared apart: a run of more than four stray
    // CR/LF bytes is dropped in pieces when it arrives in pieces, so a
    // trailing CRLFCRLF in it may count as a ping or not. Answering one
    // costs a harmless CRLF; messages and errors must not differ.
    assert_eq!(
        without_pings(whole),
        without_pings(chunked),
        "framing depends on segmentation (sizes {sizes:?})"
    );
});
