//! Fuzzes `StreamFramer` (TCP/TLS) with arbitrary chunking.
//!
//! The input is `[n, chunk sizes…(n bytes), stream…]`. The stream is fed once
//! in one piece and once cut into the given chunk sizes (cycled), draining
//! `next_message` after every push as the runtime does. Checked: no panic,
//! and both feeds produce the same sequence of messages, keep-alive pings and
//! errors — framing must not depend on how TCP segments the bytes. After an
//! error the connection is closed, so both sequences stop there.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palaver_sip::{Framed, Message, StreamFramer};

#[derive(Debug, PartialEq)]
enum Out {
    Message(Box<Message>),
    Ping,
    Error(String),
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

    assert_eq!(
        whole, chunked,
        "framing depends on segmentation (sizes {sizes:?})"
    );
});
