//! Who may do what: digest challenges for lines, and the per-source rate
//! limit on failed authentications.
//!
//! [`AuthGuard::check`] looks at a request's credentials and answers with an
//! [`AuthOutcome`]; the core turns `Challenge` into `401`/`407` and `Denied`
//! into `403`. After `max_failures` bad credentials from one IP address
//! within `window`, that address gets `403` for `cooldown` without any
//! password being checked — enough to make online guessing useless.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use palaver_sip::auth::{Algorithm, Challenge, Credentials, NonceIssuer, NonceState};
use palaver_store::Line;

use crate::directory::Directory;

/// Settings of the guard.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    pub realm: String,
    /// Challenges offered, in this order (RFC 8760: preferred first).
    /// Credentials in either algorithm are always accepted. MD5 alone is the
    /// default because deployed clients break on a SHA-256 challenge:
    /// SIPp 3.6 answers only the first challenge and cannot do SHA-256, and
    /// baresip 1.0 abandons the registration when any challenge is SHA-256
    /// (see docs/decisions/0004-digest-algorithms.md).
    pub algorithms: Vec<Algorithm>,
    pub nonce_lifetime: Duration,
    pub max_failures: u32,
    pub window: Duration,
    pub cooldown: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            realm: "palaver".into(),
            algorithms: vec![Algorithm::Md5],
            nonce_lifetime: Duration::from_secs(300),
            max_failures: 10,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(300),
        }
    }
}

/// What the guard decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The credentials are right for this line.
    Authenticated(palaver_store::LineId),
    /// Ask (again) for credentials; `stale` when only the nonce had expired.
    Challenge { stale: bool },
    /// Refuse: bad credentials, or this source is cooling down.
    Denied(&'static str),
}

#[derive(Debug, Default)]
struct SourceRecord {
    failures: Vec<Instant>,
    banned_until: Option<Instant>,
}

/// Digest authentication plus the failure limiter.
#[derive(Debug)]
pub struct AuthGuard {
    config: GuardConfig,
    nonces: NonceIssuer,
    sources: HashMap<IpAddr, SourceRecord>,
}

impl AuthGuard {
    pub fn new(config: GuardConfig, secret: [u8; 32]) -> AuthGuard {
        let lifetime = config.nonce_lifetime.as_millis() as u64;
        AuthGuard {
            config,
            nonces: NonceIssuer::new(secret, lifetime),
            sources: HashMap::new(),
        }
    }

    pub fn realm(&self) -> &str {
        &self.config.realm
    }

    /// Whether `source` is in its cooling period.
    pub fn is_banned(&mut self, source: IpAddr, now: Instant) -> bool {
        match self.sources.get_mut(&source) {
            Some(rec) => match rec.banned_until {
                Some(until) if until > now => true,
                Some(_) => {
                    rec.banned_until = None;
                    rec.failures.clear();
                    false
                }
                None => false,
            },
            None => false,
        }
    }

    /// The challenge header values to send, one per algorithm.
    pub fn challenges(&self, now_ms: u64, stale: bool) -> Vec<String> {
        let nonce = self.nonces.issue(now_ms);
        self.config
            .algorithms
            .iter()
            .map(|alg| {
                Challenge {
                    realm: self.config.realm.clone(),
                    nonce: nonce.clone(),
                    opaque: None,
                    algorithm: *alg,
                    qop_auth: true,
                    stale,
                }
                .to_header_value()
            })
            .collect()
    }

    /// Checks the credentials in `header_value` (an Authorization or
    /// Proxy-Authorization value) for `method`.
    pub fn check(
        &mut self,
        header_value: Option<&str>,
        method: &str,
        source: IpAddr,
        dir: &Directory,
        now: Instant,
        now_ms: u64,
    ) -> AuthOutcome {
        if self.is_banned(source, now) {
            return AuthOutcome::Denied("Forbidden (too many failed authentications)");
        }
        let Some(value) = header_value else {
            return AuthOutcome::Challenge { stale: false };
        };
        let Ok(creds) = Credentials::parse(value) else {
            self.fail(source, now);
            return AuthOutcome::Denied("Forbidden (malformed credentials)");
        };
        if creds.realm != self.config.realm {
            return AuthOutcome::Challenge { stale: false };
        }
        match self.nonces.check(&creds.nonce, now_ms) {
            NonceState::Fresh => {}
            NonceState::Stale => return AuthOutcome::Challenge { stale: true },
            // Not ours (e.g. issued before a restart): ask again, no penalty.
            NonceState::Invalid => return AuthOutcome::Challenge { stale: false },
        }
        let line: Option<&Line> = dir.line_by_extension(&creds.username);
        match line {
            Some(l) if creds.verify(method, &l.password) => AuthOutcome::Authenticated(l.id),
            _ => {
                self.fail(source, now);
                tracing::warn!(%source, user = %creds.username, "authentication failed");
                metrics::counter!("palaver_auth_failures_total").increment(1);
                AuthOutcome::Denied("Forbidden (bad credentials)")
            }
        }
    }

    fn fail(&mut self, source: IpAddr, now: Instant) {
        let window = self.config.window;
        let rec = self.sources.entry(source).or_default();
        rec.failures
            .retain(|t| now.saturating_duration_since(*t) < window);
        rec.failures.push(now);
        if rec.failures.len() as u32 >= self.config.max_failures {
            rec.banned_until = Some(now + self.config.cooldown);
            tracing::warn!(%source, cooldown_s = self.config.cooldown.as_secs(), "too many failed authentications: source blocked");
            metrics::counter!("palaver_auth_blocked_total").increment(1);
        }
    }

    /// Forgets records that no longer matter (called now and then).
    pub fn sweep(&mut self, now: Instant) {
        let window = self.config.window;
        self.sources.retain(|_, r| {
            r.banned_until.is_some_and(|u| u > now)
                || r.failures
                    .iter()
                    .any(|t| now.saturating_duration_since(*t) < window)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palaver_store::{Line, LineId};

    fn dir() -> Directory {
        Directory::new(
            vec![Line {
                id: LineId(1),
                extension: "1001".into(),
                display_name: "A".into(),
                password: "secret".into(),
                created_at: 0,
            }],
            vec![],
            vec![],
            vec![],
        )
    }

    fn both() -> GuardConfig {
        GuardConfig {
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            ..GuardConfig::default()
        }
    }

    fn answer(guard: &AuthGuard, pw: &str, alg_index: usize, now_ms: u64) -> String {
        let ch = Challenge::parse(&guard.challenges(now_ms, false)[alg_index]).unwrap();
        Credentials::answer(&ch, "REGISTER", "sip:127.0.0.1", "1001", pw, 1, "cn").to_header_value()
    }

    #[test]
    fn md5_and_sha256_both_work() {
        let mut g = AuthGuard::new(both(), [3; 32]);
        let t = Instant::now();
        let src: IpAddr = "127.0.0.1".parse().unwrap();
        for i in 0..2 {
            let v = answer(&g, "secret", i, 1000);
            assert_eq!(
                g.check(Some(&v), "REGISTER", src, &dir(), t, 1000),
                AuthOutcome::Authenticated(LineId(1))
            );
        }
    }

    #[test]
    fn stale_nonce_is_rechallenged_with_stale() {
        let mut g = AuthGuard::new(both(), [3; 32]);
        let v = answer(&g, "secret", 0, 1000);
        let out = g.check(
            Some(&v),
            "REGISTER",
            "127.0.0.1".parse().unwrap(),
            &dir(),
            Instant::now(),
            1000 + 301_000,
        );
        assert_eq!(out, AuthOutcome::Challenge { stale: true });
    }

    #[test]
    fn ten_failures_block_the_source_then_it_cools_down() {
        let mut g = AuthGuard::new(both(), [3; 32]);
        let t0 = Instant::now();
        let src: IpAddr = "127.0.0.9".parse().unwrap();
        for i in 0..10 {
            let v = answer(&g, "wrong", 1, 1000);
            let out = g.check(
                Some(&v),
                "REGISTER",
                src,
                &dir(),
                t0 + Duration::from_secs(i),
                1000,
            );
            assert_eq!(out, AuthOutcome::Denied("Forbidden (bad credentials)"));
        }
        // Even the right password is refused while cooling down.
        let good = answer(&g, "secret", 1, 1000);
        let out = g.check(
            Some(&good),
            "REGISTER",
            src,
            &dir(),
            t0 + Duration::from_secs(11),
            1000,
        );
        assert_eq!(
            out,
            AuthOutcome::Denied("Forbidden (too many failed authentications)")
        );
        // Another source is not affected.
        let other: IpAddr = "127.0.0.8".parse().unwrap();
        assert_eq!(
            g.check(
                Some(&good),
                "REGISTER",
                other,
                &dir(),
                t0 + Duration::from_secs(11),
                1000
            ),
            AuthOutcome::Authenticated(LineId(1))
        );
        // After the cooldown it works again.
        let later = t0 + Duration::from_secs(10 + 301);
        assert_eq!(
            g.check(Some(&good), "REGISTER", src, &dir(), later, 1000),
            AuthOutcome::Authenticated(LineId(1))
        );
    }
}
