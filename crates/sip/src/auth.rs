//! HTTP digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760):
//! MD5 and SHA-256, `qop=auth`.
//!
//! Server side: [`NonceIssuer`] makes nonces that carry their own issue time
//! and an HMAC, so they need no server-side table and expire by themselves
//! (an expired but authentic nonce is *stale*: the client is re-challenged
//! with `stale=true` and retries without asking the user). [`Challenge`] is a
//! `WWW-Authenticate`/`Proxy-Authenticate` value, [`Credentials`] an
//! `Authorization`/`Proxy-Authorization` value, and [`Credentials::verify`]
//! checks one against a password.
//!
//! Client side (trunk registration, the load generator):
//! [`Challenge::parse`] and [`Credentials::answer`].

use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use sha2::Sha256;

use crate::error::HeaderError;
use crate::text::{quote, split_commas, unquote_prefix};

/// Digest algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    pub fn parse(s: &str) -> Option<Algorithm> {
        if s.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    fn hash_hex(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }
}

/// The outcome of checking a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    Fresh,
    /// Ours, but too old: re-challenge with `stale=true`.
    Stale,
    /// Not ours, or tampered with.
    Invalid,
}

/// Issues and checks self-validating nonces.
#[derive(Clone)]
pub struct NonceIssuer {
    secret: [u8; 32],
    lifetime_ms: u64,
}

impl std::fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceIssuer")
            .field("lifetime_ms", &self.lifetime_ms)
            .finish_non_exhaustive()
    }
}

type HmacSha256 = Hmac<Sha256>;

impl NonceIssuer {
    /// `lifetime_ms`: how long a nonce stays fresh.
    pub fn new(secret: [u8; 32], lifetime_ms: u64) -> NonceIssuer {
        NonceIssuer {
            secret,
            lifetime_ms,
        }
    }

    /// A nonce issued at `now_ms` (Unix milliseconds).
    pub fn issue(&self, now_ms: u64) -> String {
        use rand::Rng;
        let salt: u64 = rand::rng().random();
        let mut body = [0u8; 16];
        body[..8].copy_from_slice(&now_ms.to_be_bytes());
        body[8..].copy_from_slice(&salt.to_be_bytes());
        let tag = self.mac(&body);
        let mut out = hex::encode(body);
        out.push_str(&hex::encode(&tag[..12]));
        out
    }

    pub fn check(&self, nonce: &str, now_ms: u64) -> NonceState {
        let Ok(raw) = hex::decode(nonce) else {
            return NonceState::Invalid;
        };
        if raw.len() != 28 {
            return NonceState::Invalid;
        }
        let tag = self.mac(&raw[..16]);
        if !constant_time_eq(&tag[..12], &raw[16..]) {
            return NonceState::Invalid;
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        let issued = u64::from_be_bytes(ts);
        if issued > now_ms.saturating_add(60_000) {
            return NonceState::Invalid;
        }
        if now_ms.saturating_sub(issued) > self.lifetime_ms {
            NonceState::Stale
        } else {
            NonceState::Fresh
        }
    }

    fn mac(&self, data: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length, so new_from_slice cannot fail here.
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(data);
        m.finalize().into_bytes().into()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// Whether `qop="auth"` is offered.
    pub qop_auth: bool,
    pub stale: bool,
}

impl Challenge {
    /// The header value: `Digest realm="…", nonce="…", algorithm=…, qop="auth"`.
    pub fn to_header_value(&self) -> String {
        let mut s = String::from("Digest realm=");
        quote(&self.realm, &mut s);
        s.push_str(", nonce=");
        quote(&self.nonce, &mut s);
        if let Some(o) = &self.opaque {
            s.push_str(", opaque=");
            quote(o, &mut s);
        }
        let _ = write!(s, ", algorithm={}", self.algorithm.as_str());
        if self.qop_auth {
            s.push_str(", qop=\"auth\"");
        }
        if self.stale {
            s.push_str(", stale=true");
        }
        s
    }

    /// Parses a `WWW-Authenticate`/`Proxy-Authenticate` value.
    pub fn parse(value: &str) -> Result<Challenge, HeaderError> {
        let params = parse_digest_params(value)?;
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let algorithm = match get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => {
                Algorithm::parse(a).ok_or(HeaderError::Invalid("unsupported digest algorithm"))?
            }
        };
        Ok(Challenge {
            realm: get("realm")
                .ok_or(HeaderError::Invalid("challenge without realm"))?
                .to_owned(),
            nonce: get("nonce")
                .ok_or(HeaderError::Invalid("challenge without nonce"))?
                .to_owned(),
            opaque: get("opaque").map(str::to_owned),
            algorithm,
            qop_auth: get("qop")
                .map(|q| q.split(',').any(|x| x.trim().eq_ignore_ascii_case("auth")))
                .unwrap_or(false),
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }
}

/// Digest credentials from an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Algorithm,
    pub cnonce: Option<String>,
    pub nc: Option<String>,
    /// `auth` when present.
    pub qop: Option<String>,
    pub opaque: Option<String>,
}

impl Credentials {
    pub fn parse(value: &str) -> Result<Credentials, HeaderError> {
        let params = parse_digest_params(value)?;
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        let need = |k: &'static str| get(k).ok_or(HeaderError::Invalid(k));
        let algorithm = match get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => {
                Algorithm::parse(&a).ok_or(HeaderError::Invalid("unsupported digest algorithm"))?
            }
        };
        let qop = get("qop");
        if let Some(q) = &qop
            && !q.eq_ignore_ascii_case("auth")
        {
            return Err(HeaderError::Invalid("unsupported qop"));
        }
        let creds = Credentials {
            username: need("username")?,
            realm: need("realm")?,
            nonce: need("nonce")?,
            uri: need("uri")?,
            response: need("response")?,
            algorithm,
            cnonce: get("cnonce"),
            nc: get("nc"),
            qop,
            opaque: get("opaque"),
        };
        if creds.qop.is_some() && (creds.cnonce.is_none() || creds.nc.is_none()) {
            return Err(HeaderError::Invalid("qop without cnonce or nc"));
        }
        Ok(creds)
    }

    /// Whether `response` is right for `method` and `password`.
    pub fn verify(&self, method: &str, password: &str) -> bool {
        let expected = compute_response(
            self.algorithm,
            &self.username,
            &self.realm,
            password,
            method,
            &self.uri,
            &self.nonce,
            self.qop.as_ref().map(|_| {
                (
                    self.nc.as_deref().unwrap_or(""),
                    self.cnonce.as_deref().unwrap_or(""),
                )
            }),
        );
        constant_time_eq(
            expected.as_bytes(),
            self.response.to_ascii_lowercase().as_bytes(),
        )
    }

    /// Client side: credentials answering `challenge`.
    pub fn answer(
        challenge: &Challenge,
        method: &str,
        uri: &str,
        username: &str,
        password: &str,
        nc: u32,
        cnonce: &str,
    ) -> Credentials {
        let nc_s = format!("{nc:08x}");
        let qop = challenge.qop_auth.then(|| "auth".to_owned());
        let response = compute_response(
            challenge.algorithm,
            username,
            &challenge.realm,
            password,
            method,
            uri,
            &challenge.nonce,
            qop.as_ref().map(|_| (nc_s.as_str(), cnonce)),
        );
        Credentials {
            username: username.to_owned(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: uri.to_owned(),
            response,
            algorithm: challenge.algorithm,
            cnonce: qop.as_ref().map(|_| cnonce.to_owned()),
            nc: qop.as_ref().map(|_| nc_s.clone()),
            qop,
            opaque: challenge.opaque.clone(),
        }
    }

    pub fn to_header_value(&self) -> String {
        let mut s = String::from("Digest username=");
        quote(&self.username, &mut s);
        s.push_str(", realm=");
        quote(&self.realm, &mut s);
        s.push_str(", nonce=");
        quote(&self.nonce, &mut s);
        s.push_str(", uri=");
        quote(&self.uri, &mut s);
        s.push_str(", response=");
        quote(&self.response, &mut s);
        let _ = write!(s, ", algorithm={}", self.algorithm.as_str());
        if let (Some(q), Some(nc), Some(cn)) = (&self.qop, &self.nc, &self.cnonce) {
            let _ = write!(s, ", qop={q}, nc={nc}, cnonce=");
            quote(cn, &mut s);
        }
        if let Some(o) = &self.opaque {
            s.push_str(", opaque=");
            quote(o, &mut s);
        }
        s
    }
}

#[allow(clippy::too_many_arguments)]
fn compute_response(
    alg: Algorithm,
    username: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str)>,
) -> String {
    let ha1 = alg.hash_hex(&format!("{username}:{realm}:{password}"));
    let ha2 = alg.hash_hex(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => alg.hash_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")),
        None => alg.hash_hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// Splits `Digest a="b", c=d` into pairs.
fn parse_digest_params(value: &str) -> Result<Vec<(String, String)>, HeaderError> {
    let v = value.trim();
    let rest = match v.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("Digest") => rest,
        _ => return Err(HeaderError::Invalid("not a Digest header")),
    };
    let mut out = Vec::new();
    for item in split_commas(rest)? {
        let (k, val) = item
            .split_once('=')
            .ok_or(HeaderError::Invalid("digest parameter without value"))?;
        let k = k.trim();
        let val = val.trim();
        let val = if val.starts_with('"') {
            let (s, used) = unquote_prefix(val)?;
            if val[used..].trim().is_empty() {
                s
            } else {
                return Err(HeaderError::Invalid("junk after quoted digest value"));
            }
        } else {
            val.to_owned()
        };
        out.push((k.to_owned(), val));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_md5_example_without_qop() {
        // RFC 2617 §3.5 style check computed independently.
        let r = compute_response(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(("00000001", "0a4f113b")),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_sha256_example() {
        // RFC 7616 §3.9.1.
        let r = compute_response(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            Some(("00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")),
        );
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn answer_then_verify_round_trip() {
        let issuer = NonceIssuer::new([7; 32], 300_000);
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            let ch = Challenge {
                realm: "palaver".into(),
                nonce: issuer.issue(1_000),
                opaque: None,
                algorithm: alg,
                qop_auth: true,
                stale: false,
            };
            let parsed = Challenge::parse(&ch.to_header_value()).unwrap();
            assert_eq!(parsed, ch);
            let c =
                Credentials::answer(&parsed, "REGISTER", "sip:127.0.0.1", "1001", "pw", 1, "abc");
            let back = Credentials::parse(&c.to_header_value()).unwrap();
            assert!(back.verify("REGISTER", "pw"));
            assert!(!back.verify("REGISTER", "wrong"));
            assert!(!back.verify("INVITE", "pw"));
        }
    }

    #[test]
    fn nonce_expiry_and_tampering() {
        let issuer = NonceIssuer::new([1; 32], 30_000);
        let n = issuer.issue(1_000_000);
        assert_eq!(issuer.check(&n, 1_000_000), NonceState::Fresh);
        assert_eq!(issuer.check(&n, 1_030_001), NonceState::Stale);
        let mut bad = n.clone().into_bytes();
        bad[3] = if bad[3] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            issuer.check(std::str::from_utf8(&bad).unwrap(), 1_000_000),
            NonceState::Invalid
        );
        let other = NonceIssuer::new([2; 32], 30_000);
        assert_eq!(other.check(&n, 1_000_000), NonceState::Invalid);
        assert_eq!(issuer.check("zz", 0), NonceState::Invalid);
    }

    #[test]
    fn parses_sipp_style_authorization() {
        let v = r#"Digest username="1001",realm="palaver",uri="sip:127.0.0.1:5060",nonce="abc",response="0123",algorithm=MD5"#;
        let c = Credentials::parse(v).unwrap();
        assert_eq!(c.username, "1001");
        assert_eq!(c.qop, None);
        assert!(Credentials::parse("Basic abc").is_err());
        assert!(Credentials::parse(r#"Digest username="x"#).is_err());
    }
}
