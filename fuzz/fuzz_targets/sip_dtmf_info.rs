//! Fuzzes `parse_dtmf_info`, the reader of SIP INFO bodies carrying key
//! presses (`application/dtmf-relay` and `application/dtmf`).
//!
//! The input is `[selector, body…]`; the selector picks the content type.
//! Checked: no panic, and any key reported is one a keypad can send.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palaver_sip::dtmf_info::parse_dtmf_info;

const CONTENT_TYPES: [&str; 3] = ["application/dtmf-relay", "application/dtmf", "text/plain"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    if let Some(d) = parse_dtmf_info(content_type, body) {
        assert!(
            matches!(d.digit, '0'..='9' | '*' | '#' | 'A'..='D'),
            "not a keypad key: {:?}",
            d.digit
        );
        assert_ne!(content_type, "text/plain", "a non-DTMF body gave a key");
    }
});
