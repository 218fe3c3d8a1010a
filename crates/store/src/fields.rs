//! Field-level validation shared by the model types, and the small value types
//! more than one table uses ([`Transport`], [`Language`]).
//!
//! Every check returns [`StoreError::Invalid`] naming the field and saying, in
//! a sentence for the user, what is wrong. The functions are public so the web
//! layer can check a single field (e.g. while a form is being typed) with the
//! same rules the store enforces on write. They only look at text: whether a
//! value is already taken is the database's business.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

/// Longest PIN we accept (SPEC C3).
pub const MAX_PIN_DIGITS: usize = 20;
/// Extension length bounds (P1): long enough for any dial plan, short enough
/// never to collide with E.164 numbers in practice.
pub const EXTENSION_DIGITS: std::ops::RangeInclusive<usize> = 2..=15;

/// Trims and checks an internal extension: digits only, 2–15 of them.
pub fn extension(field: &'static str, input: &str) -> Result<String> {
    let value = input.trim();
    if value.is_empty() {
        return Err(StoreError::invalid(field, "is required"));
    }
    if let Some(bad) = value.chars().find(|c| !c.is_ascii_digit()) {
        return Err(StoreError::invalid(
            field,
            format!("must contain digits only (found {bad:?})"),
        ));
    }
    if !EXTENSION_DIGITS.contains(&value.len()) {
        return Err(StoreError::invalid(
            field,
            format!(
                "must have {} to {} digits (has {})",
                EXTENSION_DIGITS.start(),
                EXTENSION_DIGITS.end(),
                value.len()
            ),
        ));
    }
    Ok(value.to_owned())
}

/// Checks a PIN (SPEC C3): digits only, 1–20 of them. Empty, absent or `"0"`
/// mean "no PIN" and come back as `None`.
pub fn pin(field: &'static str, input: Option<&str>) -> Result<Option<String>> {
    let value = input.map(str::trim).unwrap_or("");
    if value.is_empty() || value == "0" {
        return Ok(None);
    }
    if let Some(bad) = value.chars().find(|c| !c.is_ascii_digit()) {
        return Err(StoreError::invalid(
            field,
            format!("must contain digits only (found {bad:?})"),
        ));
    }
    if value.len() > MAX_PIN_DIGITS {
        return Err(StoreError::invalid(
            field,
            format!(
                "must have at most {MAX_PIN_DIGITS} digits (has {})",
                value.len()
            ),
        ));
    }
    Ok(Some(value.to_owned()))
}

/// Checks a public number (DID): digits with an optional leading `+`, 1–20
/// digits (E.164 allows 15; carriers add prefixes).
pub fn did(field: &'static str, input: &str) -> Result<String> {
    let value = input.trim();
    let digits = value.strip_prefix('+').unwrap_or(value);
    if digits.is_empty() {
        return Err(StoreError::invalid(field, "is required"));
    }
    if let Some(bad) = digits.chars().find(|c| !c.is_ascii_digit()) {
        return Err(StoreError::invalid(
            field,
            format!("must be digits with an optional leading + (found {bad:?})"),
        ));
    }
    if digits.len() > 20 {
        return Err(StoreError::invalid(
            field,
            format!("must have at most 20 digits (has {})", digits.len()),
        ));
    }
    Ok(value.to_owned())
}

/// Trims a human-readable label and checks its length in characters and that
/// it holds no control characters (they would end up in SIP headers and HTML).
pub fn label(field: &'static str, input: &str, min: usize, max: usize) -> Result<String> {
    let value = input.trim();
    let len = value.chars().count();
    if len < min {
        return Err(StoreError::invalid(
            field,
            if min == 1 {
                "is required".to_owned()
            } else {
                format!("must have at least {min} characters")
            },
        ));
    }
    if len > max {
        return Err(StoreError::invalid(
            field,
            format!("must have at most {max} characters (has {len})"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// Checks a SIP secret kept as given (phones need the clear text for digest
/// auth and provisioning): 1–128 printable ASCII characters, no spaces, since
/// phone keypads and config files cannot carry anything else reliably.
pub fn secret(field: &'static str, input: &str) -> Result<String> {
    if input.is_empty() {
        return Err(StoreError::invalid(field, "is required"));
    }
    if input.len() > 128 {
        return Err(StoreError::invalid(
            field,
            "must have at most 128 characters",
        ));
    }
    if !input.chars().all(|c| c.is_ascii_graphic()) {
        return Err(StoreError::invalid(
            field,
            "must be printable ASCII without spaces",
        ));
    }
    Ok(input.to_owned())
}

/// Loose e-mail check: `local@domain`, no spaces, at most 254 characters.
/// The SMTP server is the real judge; this catches typos like a missing `@`.
pub fn email(field: &'static str, input: &str) -> Result<String> {
    let value = input.trim();
    if value.len() > 254 {
        return Err(StoreError::invalid(
            field,
            "must have at most 254 characters",
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(StoreError::invalid(field, "must not contain spaces"));
    }
    match value.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.') =>
        {
            Ok(value.to_owned())
        }
        _ => Err(StoreError::invalid(
            field,
            "must look like name@example.org",
        )),
    }
}

/// Checks the name of an uploaded file kept in the data dir: a bare file name
/// (no directory part, not `.` or `..`), 1–255 bytes, so it can never escape
/// the uploads folder.
pub fn file_name(field: &'static str, input: &str) -> Result<String> {
    if input.is_empty() {
        return Err(StoreError::invalid(field, "is required"));
    }
    if input.len() > 255 {
        return Err(StoreError::invalid(field, "must have at most 255 bytes"));
    }
    if input == "." || input == ".." || input.contains(['/', '\\']) {
        return Err(StoreError::invalid(
            field,
            "must be a plain file name without a directory",
        ));
    }
    if input.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(input.to_owned())
}

/// Parses one trunk source address: an IP (`192.0.2.7`, `::1`) meaning that
/// host, or a network in CIDR form (`127.0.0.0/8`). A network with host bits
/// set (`10.1.2.3/8`) is refused: it is almost always a typo.
pub fn network(field: &'static str, input: &str) -> Result<IpNet> {
    let value = input.trim();
    if value.is_empty() {
        return Err(StoreError::invalid(field, "contains an empty address"));
    }
    if value.contains('/') {
        let net: IpNet = value.parse().map_err(|_| {
            StoreError::invalid(
                field,
                format!("{value:?} is not an IP address or CIDR network like 127.0.0.0/8"),
            )
        })?;
        if net.trunc() != net {
            return Err(StoreError::invalid(
                field,
                format!("{value:?} has host bits set; did you mean {}?", net.trunc()),
            ));
        }
        Ok(net)
    } else {
        let ip: IpAddr = value.parse().map_err(|_| {
            StoreError::invalid(
                field,
                format!("{value:?} is not an IP address or CIDR network like 127.0.0.0/8"),
            )
        })?;
        Ok(IpNet::from(ip))
    }
}

/// Checks where to send a trunk's calls: `host`, `host:port`, `[v6]` or
/// `[v6]:port`, where host is an IP or a DNS name. A bare IPv6 address is
/// accepted too (it cannot carry a port without brackets).
pub fn host_port(field: &'static str, input: &str) -> Result<String> {
    let value = input.trim();
    let bad = |why: &str| StoreError::invalid(field, format!("{value:?} {why}"));
    if value.is_empty() {
        return Err(StoreError::invalid(field, "is required"));
    }
    if value.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(value.to_owned());
    }
    let port = if let Some(rest) = value.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("has an unclosed '['"))?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("has an invalid IPv6 address in brackets"));
        }
        match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err(bad("must be [IPv6]:port")),
            },
        }
    } else {
        match value.split_once(':') {
            Some((host, port)) => {
                if !is_dns_name_or_ipv4(host) {
                    return Err(bad("is not a valid host name or IPv4 address"));
                }
                Some(port)
            }
            None => {
                if !is_dns_name_or_ipv4(value) {
                    return Err(bad("is not a valid host name or IPv4 address"));
                }
                None
            }
        }
    };
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 && port.chars().all(|c| c.is_ascii_digit()) => {}
            _ => return Err(bad("has a port that is not a number from 1 to 65535")),
        }
    }
    Ok(value.to_owned())
}

fn is_dns_name_or_ipv4(host: &str) -> bool {
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A SIP transport, as stored for bindings and trunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP (the default for SIP).
    #[default]
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Transport {
    /// The lowercase name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            "tls" => Ok(Transport::Tls),
            _ => Err(StoreError::invalid(
                "transport",
                format!("{s:?} is not one of udp, tcp, tls"),
            )),
        }
    }
}

/// The language of a room's prompts (SPEC C13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English (the default).
    #[default]
    En,
    /// French.
    Fr,
    /// German.
    De,
    /// Spanish.
    Es,
    /// Italian.
    It,
    /// Dutch.
    Nl,
}

impl Language {
    /// Every supported language, in the order the panel lists them.
    pub const ALL: [Language; 6] = [
        Language::En,
        Language::Fr,
        Language::De,
        Language::Es,
        Language::It,
        Language::Nl,
    ];

    /// The ISO 639-1 code stored in the database and used for prompt folders.
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Fr => "fr",
            Language::De => "de",
            Language::Es => "es",
            Language::It => "it",
            Language::Nl => "nl",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Language {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase();
        Language::ALL
            .into_iter()
            .find(|l| l.code() == wanted)
            .ok_or_else(|| {
                StoreError::invalid(
                    "language",
                    format!("{s:?} is not one of en, fr, de, es, it, nl"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message(result: Result<impl fmt::Debug>) -> (&'static str, String) {
        match result {
            Err(StoreError::Invalid { field, message }) => (field, message),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn pins_normalise_empty_and_zero_to_none() {
        assert_eq!(pin("access_pin", None).unwrap(), None);
        assert_eq!(pin("access_pin", Some("")).unwrap(), None);
        assert_eq!(pin("access_pin", Some(" 0 ")).unwrap(), None);
        assert_eq!(pin("access_pin", Some("00")).unwrap(), Some("00".into()));
        assert_eq!(
            pin("access_pin", Some("1234")).unwrap(),
            Some("1234".into())
        );
    }

    #[test]
    fn pins_refuse_letters_and_length() {
        let (field, msg) = message(pin("host_pin", Some("12a4")));
        assert_eq!(field, "host_pin");
        assert_eq!(msg, "must contain digits only (found 'a')");
        let (_, msg) = message(pin("access_pin", Some(&"1".repeat(21))));
        assert_eq!(msg, "must have at most 20 digits (has 21)");
        assert!(pin("access_pin", Some(&"9".repeat(20))).is_ok());
    }

    #[test]
    fn extensions() {
        assert_eq!(extension("extension", " 1001 ").unwrap(), "1001");
        let (_, msg) = message(extension("extension", "1"));
        assert_eq!(msg, "must have 2 to 15 digits (has 1)");
        let (_, msg) = message(extension("extension", "10x1"));
        assert_eq!(msg, "must contain digits only (found 'x')");
        let (_, msg) = message(extension("extension", ""));
        assert_eq!(msg, "is required");
        assert!(extension("extension", &"1".repeat(16)).is_err());
    }

    #[test]
    fn dids() {
        assert_eq!(did("number", "+33123456789").unwrap(), "+33123456789");
        assert_eq!(did("number", "800").unwrap(), "800");
        let (_, msg) = message(did("number", "+"));
        assert_eq!(msg, "is required");
        let (_, msg) = message(did("number", "++33"));
        assert_eq!(msg, "must be digits with an optional leading + (found '+')");
    }

    #[test]
    fn networks() {
        assert_eq!(
            network("addresses", "127.0.0.0/8").unwrap().to_string(),
            "127.0.0.0/8"
        );
        assert_eq!(
            network("addresses", "192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32"
        );
        assert_eq!(network("addresses", "::1").unwrap().to_string(), "::1/128");
        let (field, msg) = message(network("addresses", "10.1.2.3/8"));
        assert_eq!(field, "addresses");
        assert_eq!(
            msg,
            "\"10.1.2.3/8\" has host bits set; did you mean 10.0.0.0/8?"
        );
        let (_, msg) = message(network("addresses", "127.0.0.0/33"));
        assert_eq!(
            msg,
            "\"127.0.0.0/33\" is not an IP address or CIDR network like 127.0.0.0/8"
        );
        assert!(network("addresses", "example.org").is_err());
    }

    #[test]
    fn host_ports() {
        for ok in [
            "sip.example.org",
            "sip.example.org:5060",
            "127.0.0.1:5080",
            "[::1]:5060",
            "[2001:db8::1]",
            "::1",
        ] {
            assert_eq!(host_port("host", ok).unwrap(), ok, "{ok}");
        }
        let (_, msg) = message(host_port("host", "sip.example.org:0"));
        assert_eq!(
            msg,
            "\"sip.example.org:0\" has a port that is not a number from 1 to 65535"
        );
        let (_, msg) = message(host_port("host", "bad host:5060"));
        assert_eq!(
            msg,
            "\"bad host:5060\" is not a valid host name or IPv4 address"
        );
        assert!(host_port("host", "[::1").is_err());
        assert!(host_port("host", "[::1]5060").is_err());
        assert!(host_port("host", "a:+5").is_err());
    }

    #[test]
    fn emails() {
        assert!(email("report_email", "ops@example.org").is_ok());
        assert!(email("report_email", "root@localhost").is_ok());
        let (_, msg) = message(email("report_email", "ops.example.org"));
        assert_eq!(msg, "must look like name@example.org");
        let (_, msg) = message(email("report_email", "a b@c"));
        assert_eq!(msg, "must not contain spaces");
    }

    #[test]
    fn file_names() {
        assert!(file_name("moh_upload", "jazz.wav").is_ok());
        let (_, msg) = message(file_name("moh_upload", "../etc/passwd"));
        assert_eq!(msg, "must be a plain file name without a directory");
        assert!(file_name("moh_upload", "..").is_err());
    }

    #[test]
    fn secrets_and_labels() {
        assert!(secret("password", "s3cret!").is_ok());
        let (_, msg) = message(secret("password", "has space"));
        assert_eq!(msg, "must be printable ASCII without spaces");
        let (_, msg) = message(label("name", "  ", 1, 10));
        assert_eq!(msg, "is required");
        let (_, msg) = message(label("name", "a\u{7}", 1, 10));
        assert_eq!(msg, "must not contain control characters");
        let (_, msg) = message(label("name", "abcdefghijk", 1, 10));
        assert_eq!(msg, "must have at most 10 characters (has 11)");
    }

    #[test]
    fn enums_round_trip() {
        for l in Language::ALL {
            assert_eq!(l.code().parse::<Language>().unwrap(), l);
        }
        let (field, msg) = message("pt".parse::<Language>());
        assert_eq!(field, "language");
        assert_eq!(msg, "\"pt\" is not one of en, fr, de, es, it, nl");
        for t in [Transport::Udp, Transport::Tcp, Transport::Tls] {
            assert_eq!(t.as_str().parse::<Transport>().unwrap(), t);
        }
        assert!("sctp".parse::<Transport>().is_err());
    }

    proptest! {
        #[test]
        fn validators_never_panic(s in "\\PC*") {
            let _ = extension("f", &s);
            let _ = pin("f", Some(&s));
            let _ = did("f", &s);
            let _ = label("f", &s, 1, 64);
            let _ = secret("f", &s);
            let _ = email("f", &s);
            let _ = file_name("f", &s);
            let _ = network("f", &s);
            let _ = host_port("f", &s);
            let _ = s.parse::<Language>();
            let _ = s.parse::<Transport>();
        }

        #[test]
        fn valid_pins_are_accepted_unchanged(p in "[0-9]{1,20}") {
            let got = pin("f", Some(&p)).unwrap();
            if p == "0" { prop_assert_eq!(got, None) } else { prop_assert_eq!(got, Some(p)) }
        }

        #[test]
        fn valid_extensions_are_accepted_unchanged(e in "[0-9]{2,15}") {
            prop_assert_eq!(extension("f", &e).unwrap(), e);
        }

        #[test]
        fn valid_dids_are_accepted_unchanged(d in "\\+?[0-9]{1,20}") {
            prop_assert_eq!(did("f", &d).unwrap(), d);
        }

        #[test]
        fn v4_networks_round_trip(a in any::<u32>(), prefix in 0u8..=32) {
            let net = IpNet::new(IpAddr::V4(a.into()), prefix).unwrap().trunc();
            prop_assert_eq!(network("f", &net.to_string()).unwrap(), net);
        }

        #[test]
        fn v6_networks_round_trip(a in any::<u128>(), prefix in 0u8..=128) {
            let net = IpNet::new(IpAddr::V6(a.into()), prefix).unwrap().trunc();
            prop_assert_eq!(network("f", &net.to_string()).unwrap(), net);
        }

        #[test]
        fn host_ports_round_trip(
            labels in proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", 1..4),
            port in proptest::option::of(1u16..),
        ) {
            let host = labels.join(".");
            let text = match port { Some(p) => format!("{host}:{p}"), None => host };
            prop_assert_eq!(host_port("f", &text).unwrap(), text);
        }
    }
}
