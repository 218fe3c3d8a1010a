//! Fuzzes `Session::parse`: any bytes must give `Ok` or a `ParseError`, and
//! whatever parses must write out as text that parses back to the same
//! session (the serialiser never produces something the parser rejects).
#![no_main]

use libfuzzer_sys::fuzz_target;
use palaver_sdp::Session;

fuzz_target!(|data: &[u8]| {
    let Ok(session) = Session::parse(data) else {
        return;
    };
    let text = session.to_string();
    let again = Session::parse(text.as_bytes()).expect("our own output must parse");
    // Parsing is lossy only in ways writing normalises (line ends, order,
    // whitespace), so a second round is exact.
    assert_eq!(again.to_string(), text, "writing is not stable");
});
