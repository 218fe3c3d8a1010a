//! Who may use the panel and the API (issue 5, point 1).
//!
//! - Passwords are argon2id PHC strings ([`hash_password`]); the first start
//!   creates the `admin` user ([`ensure_admin`]).
//! - A panel login gets a random session id in an `HttpOnly`,
//!   `SameSite=Strict` cookie; the store keeps only its SHA-256 and the
//!   session's CSRF token, which every state-changing form must carry back.
//!   [`PanelSession`] is the extractor pages use.
//! - Scripts send `Authorization: Bearer <token>`; tokens are created in the
//!   panel and stored hashed. [`ApiCaller`] is the extractor the API uses.
//! - Failed logins are counted per client address and per user name by
//!   [`LoginLimiter`], a sans-IO window counter (time is an argument).
//!
//! Not here: the login page itself (`panel`), TLS.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use palaver_store::{AdminUser, AdminUserId, ApiTokenId, Session, Store, now_ms};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::state::{WebConfig, WebState};

/// Name of the panel's session cookie.
pub const SESSION_COOKIE: &str = "palaver_session";
/// The administrator [`ensure_admin`] creates.
pub const DEFAULT_ADMIN: &str = "admin";

/// Hashes a password into an argon2id PHC string (random salt).
pub fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
}

/// Whether `password` matches the PHC string `hash`. A malformed stored hash
/// matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Makes sure an administrator can log in. With no administrator yet, creates
/// `admin` with the `configured` password, or a generated one which is
/// returned so the binary can print it once. With `admin` present and a
/// `configured` password, sets that password if it differs (the config is
/// the source of truth). Returns `None` unless a password was generated.
pub async fn ensure_admin(store: &Store, configured: Option<&str>) -> Result<Option<String>> {
    let configured = configured.filter(|p| !p.is_empty()).map(str::to_owned);
    let existing = store.admin_user_by_username(DEFAULT_ADMIN).await?;
    match (existing, configured) {
        (Some(user), Some(password)) => {
            let hash = user.password_hash.clone();
            let check = password.clone();
            if !blocking(move || Ok(verify_password(&check, &hash))).await? {
                let new_hash = blocking(move || hash_password(&password)).await?;
                store.set_admin_password_hash(user.id, &new_hash).await?;
            }
            Ok(None)
        }
        (Some(_), None) => Ok(None),
        (None, configured) => {
            if configured.is_none() && !store.admin_users().await?.is_empty() {
                // Someone renamed or replaced `admin`; they can log in.
                return Ok(None);
            }
            let generated = configured.is_none();
            let password = configured.unwrap_or_else(generate_password);
            let for_hash = password.clone();
            let hash = blocking(move || hash_password(&for_hash)).await?;
            store.create_admin_user(DEFAULT_ADMIN, &hash).await?;
            Ok(generated.then_some(password))
        }
    }
}

/// Runs CPU-heavy work (argon2) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("blocking task: {e}")))?
}

/// 20 letters and digits (about 119 bits), easy to copy from a terminal.
fn generate_password() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

/// 256 random bits as 64 hex digits, for session ids, CSRF and API tokens.
/// `rand::rng()` is a CSPRNG (ChaCha, seeded and reseeded from the OS).
pub(crate) fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

/// 128 random bits as 32 hex digits: the follow/control URL tokens (C16).
pub(crate) fn random_url_token() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

/// Hex SHA-256 of a secret: what the store keeps instead of the secret.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two secrets in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in the request, if present.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for a new session.
pub(crate) fn session_cookie(value: &str, config: &WebConfig) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        config.session_ttl.as_secs(),
        if config.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    )
}

/// `Set-Cookie` that removes the session cookie.
pub(crate) fn clear_session_cookie(config: &WebConfig) -> String {
    format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if config.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    )
}

/// The client's address; connections without one (tests) count as 0.0.0.0.
pub(crate) fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The client's address as an extractor (see [`client_ip`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

/// Checks a login against the rate limits and the password; on success
/// starts a session and returns the `Set-Cookie` value and the session.
pub(crate) async fn login(
    state: &WebState,
    ip: IpAddr,
    username: &str,
    password: &str,
    now: Instant,
) -> Result<(String, Session)> {
    let username = username.trim().to_owned();
    lock_limiter(state)
        .check(now, ip, &username)
        .map_err(|wait| Error::TooManyRequests {
            retry_after_secs: wait.as_secs().max(1),
        })?;
    let user = state.store.admin_user_by_username(&username).await?;
    let password = password.to_owned();
    let ok = match &user {
        Some(u) => {
            let hash = u.password_hash.clone();
            blocking(move || Ok(verify_password(&password, &hash))).await?
        }
        None => {
            // Spend the same time as for a real user, so timing does not
            // tell which user names exist.
            blocking(move || {
                let _ = hash_password(&password);
                Ok(false)
            })
            .await?
        }
    };
    let Some(user) = user.filter(|_| ok) else {
        lock_limiter(state).record_failure(now, ip, &username);
        return Err(Error::invalid("password", "wrong user name or password"));
    };
    lock_limiter(state).record_success(&username);
    start_session(state, &user).await
}

fn lock_limiter(state: &WebState) -> std::sync::MutexGuard<'_, LoginLimiter> {
    // The limiter holds plain counters: a panic elsewhere cannot leave it
    // half-updated in a way that matters.
    state
        .limiter
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn start_session(state: &WebState, user: &AdminUser) -> Result<(String, Session)> {
    let id = random_token();
    let ttl_ms = i64::try_from(state.config.session_ttl.as_millis()).unwrap_or(i64::MAX / 2);
    let now = now_ms();
    let session = Session {
        id_hash: sha256_hex(&id),
        user_id: user.id,
        csrf: random_token(),
        expires_at: now.saturating_add(ttl_ms),
    };
    // Logins are rare: a good moment to forget sessions that ended.
    state.store.delete_expired_sessions(now).await?;
    state.store.create_session(&session).await?;
    Ok((session_cookie(&id, &state.config), session))
}

/// A logged-in panel user. Rejects with a redirect to the login page.
#[derive(Debug, Clone)]
pub struct PanelSession {
    /// Who is logged in.
    pub user: AdminUserId,
    /// Hash of the session id (to log out).
    pub id_hash: String,
    /// The token every form must carry back.
    pub csrf: String,
}

impl PanelSession {
    /// Refuses a form whose `csrf` field is not this session's token.
    pub fn check_csrf(&self, sent: &str) -> Result<()> {
        if constant_time_eq(sent, &self.csrf) {
            Ok(())
        } else {
            Err(Error::CsrfMismatch)
        }
    }
}

impl FromRequestParts<WebState> for PanelSession {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> std::result::Result<Self, Self::Rejection> {
        let to_login = || {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            Redirect::to(&format!("/login?next={}", encode_component(next))).into_response()
        };
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login());
        };
        let id_hash = sha256_hex(id);
        match state.store.session(&id_hash, now_ms()).await {
            Ok(Some(s)) => Ok(PanelSession {
                user: s.user_id,
                id_hash,
                csrf: s.csrf,
            }),
            Ok(None) => Err(to_login()),
            Err(e) => Err(Error::from(e).into_response()),
        }
    }
}

/// A script authenticated by `Authorization: Bearer <token>`.
#[derive(Debug, Clone, Copy)]
pub struct ApiCaller {
    /// The token used.
    pub token: ApiTokenId,
}

impl FromRequestParts<WebState> for ApiCaller {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> std::result::Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Error::Unauthorized)?;
        let found = state
            .store
            .api_token_by_hash(&sha256_hex(token))
            .await?
            .ok_or(Error::Unauthorized)?;
        state.store.touch_api_token(found.id, now_ms()).await?;
        Ok(ApiCaller { token: found.id })
    }
}

/// Percent-encodes everything but unreserved characters (for `?next=`).
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Only local paths are followed after login, never another site.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/rooms".to_owned(),
    }
}

/// Failed logins allowed per user name within [`LOGIN_WINDOW`].
pub const LOGIN_FAILURES_PER_USER: usize = 5;
/// Failed logins allowed per client address within [`LOGIN_WINDOW`].
pub const LOGIN_FAILURES_PER_IP: usize = 20;
/// How long a failed login counts.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked keys, expired ones are swept on each failure.
const SWEEP_ABOVE: usize = 10_000;

/// Counts failed logins in a sliding window, per client address and per user
/// name (so a botnet cannot guess one account's password, and one address
/// cannot sweep many accounts). Sans-IO: `now` comes in as an argument.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    by_ip: HashMap<IpAddr, VecDeque<Instant>>,
    by_user: HashMap<String, VecDeque<Instant>>,
}

impl LoginLimiter {
    /// `Ok` if a login attempt may proceed now, else how long to wait.
    pub fn check(&mut self, now: Instant, ip: IpAddr, user: &str) -> Result<(), Duration> {
        let wait_ip = wait(self.by_ip.get_mut(&ip), now, LOGIN_FAILURES_PER_IP);
        let wait_user = wait(self.by_user.get_mut(user), now, LOGIN_FAILURES_PER_USER);
        match wait_ip.max(wait_user) {
            Some(d) => Err(d),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt.
    pub fn record_failure(&mut self, now: Instant, ip: IpAddr, user: &str) {
        if self.by_ip.len() + self.by_user.len() > SWEEP_ABOVE {
            let fresh = |q: &VecDeque<Instant>| {
                q.back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < LOGIN_WINDOW)
            };
            self.by_ip.retain(|_, q| fresh(q));
            self.by_user.retain(|_, q| fresh(q));
        }
        push(
            self.by_ip.entry(ip).or_default(),
            now,
            LOGIN_FAILURES_PER_IP,
        );
        push(
            self.by_user.entry(user.to_owned()).or_default(),
            now,
            LOGIN_FAILURES_PER_USER,
        );
    }

    /// A successful login clears the user's failures (not the address's).
    pub fn record_success(&mut self, user: &str) {
        self.by_user.remove(user);
    }
}

fn expire(q: &mut VecDeque<Instant>, now: Instant) {
    while q
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= LOGIN_WINDOW)
    {
        q.pop_front();
    }
}

fn wait(q: Option<&mut VecDeque<Instant>>, now: Instant, max: usize) -> Option<Duration> {
    let q = q?;
    expire(q, now);
    if q.len() < max {
        return None;
    }
    q.front()
        .map(|oldest| LOGIN_WINDOW.saturating_sub(now.saturating_duration_since(*oldest)))
}

fn push(q: &mut VecDeque<Instant>, now: Instant, max: usize) {
    expire(q, now);
    q.push_back(now);
    while q.len() > max {
        q.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn limiter_blocks_a_user_after_five_failures_then_forgets() {
        let t0 = Instant::now();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut l = LoginLimiter::default();
        for i in 0..LOGIN_FAILURES_PER_USER {
            assert!(l.check(t0, ip, "admin").is_ok(), "attempt {i}");
            l.record_failure(t0 + Duration::from_secs(i as u64), ip, "admin");
        }
        let wait = l
            .check(t0 + Duration::from_secs(10), ip, "admin")
            .unwrap_err();
        assert_eq!(wait, LOGIN_WINDOW - Duration::from_secs(10));
        // Another user from the same address is not blocked yet.
        assert!(l.check(t0, ip, "bob").is_ok());
        // After the window the oldest failure has expired.
        assert!(l.check(t0 + LOGIN_WINDOW, ip, "admin").is_ok());
    }

    #[test]
    fn limiter_blocks_an_address_sweeping_many_users() {
        let t0 = Instant::now();
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let mut l = LoginLimiter::default();
        for i in 0..LOGIN_FAILURES_PER_IP {
            l.record_failure(t0, ip, &format!("user{i}"));
        }
        assert!(l.check(t0, ip, "fresh").is_err());
        let other: IpAddr = "127.0.0.3".parse().unwrap();
        assert!(l.check(t0, other, "fresh").is_ok());
    }

    #[test]
    fn success_clears_the_user_count() {
        let t0 = Instant::now();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut l = LoginLimiter::default();
        for _ in 0..LOGIN_FAILURES_PER_USER - 1 {
            l.record_failure(t0, ip, "admin");
        }
        l.record_success("admin");
        l.record_failure(t0, ip, "admin");
        assert!(l.check(t0, ip, "admin").is_ok());
    }

    #[test]
    fn next_only_follows_local_paths() {
        assert_eq!(safe_next(Some("/rooms/3")), "/rooms/3");
        assert_eq!(safe_next(Some("//evil.example")), "/rooms");
        assert_eq!(safe_next(Some("https://evil.example")), "/rooms");
        assert_eq!(safe_next(None), "/rooms");
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; palaver_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = random_url_token();
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_url_token());
        assert_eq!(random_token().len(), 64);
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
