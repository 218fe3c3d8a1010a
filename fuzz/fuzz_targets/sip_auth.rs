//! Fuzzes digest authentication: `Credentials::parse` (`Authorization`,
//! `Proxy-Authorization`), `Challenge::parse` (`WWW-Authenticate`,
//! `Proxy-Authenticate`) and `NonceIssuer::check`.
//!
//! The input is `[selector, text…]`; the text is a header value. Checked:
//! nothing panics; parsed credentials and challenges write out as values
//! that parse back to the same thing; `verify` never panics; and answering a
//! parsed challenge (with a user name, password and URI cut from the input)
//! gives credentials that survive the header round trip and verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palaver_sip::auth::{Challenge, Credentials, NonceIssuer};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };

    let issuer = NonceIssuer::new([9; 32], 30_000);
    let _ = issuer.check(text, 1_000_000);

    if selector & 1 == 0 {
        let Ok(creds) = Credentials::parse(text) else {
            return;
        };
        let _ = creds.verify("REGISTER", "secret");
        let _ = creds.verify(&creds.uri, &creds.username);
        let _ = issuer.check(&creds.nonce, 1_000_000);
        let value = creds.to_header_value();
        let again = match Credentials::parse(&value) {
            Ok(c) => c,
            Err(e) => panic!("our Authorization value does not parse ({e}): {value:?}"),
        };
        // nc and cnonce are only meaningful (and only written) with qop.
        let mut expected = creds.clone();
        if expected.qop.is_none() {
            expected.nc = None;
            expected.cnonce = None;
        }
        assert_eq!(
            again, expected,
            "Authorization round trip changed the value"
        );
        assert_eq!(again.to_header_value(), value, "writing is not stable");
    } else {
        // Split off the answer's inputs: `challenge \0 user \0 password \0 uri`.
        let mut parts = text.split('\0');
        let challenge_text = parts.next().unwrap_or("");
        let user = parts.next().unwrap_or("1001");
        let password = parts.next().unwrap_or("pw");
        let uri = parts.next().unwrap_or("sip:127.0.0.1");
        let Ok(challenge) = Challenge::parse(challenge_text) else {
            return;
        };
        let value = challenge.to_header_value();
        let again = match Challenge::parse(&value) {
            Ok(c) => c,
            Err(e) => panic!("our WWW-Authenticate value does not parse ({e}): {value:?}"),
        };
        assert_eq!(again, challenge, "challenge round trip changed the value");

        let creds = Credentials::answer(&challenge, "INVITE", uri, user, password, 1, "cn0nce");
        let header = creds.to_header_value();
        let back = match Credentials::parse(&header) {
            Ok(c) => c,
            Err(e) => panic!("our answer does not parse ({e}): {header:?}"),
        };
        assert!(
            back.verify("INVITE", password),
            "a correct answer fails verification: {header:?}"
        );
        assert!(
            !back.verify("BYE", password),
            "an answer for INVITE verifies for BYE"
        );
    }
});
