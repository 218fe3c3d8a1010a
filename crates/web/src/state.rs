//! [`WebState`], what every handler shares, and [`WebConfig`], the settings
//! the binary passes in. Both are cheap to clone.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use palaver_store::Store;

use crate::auth::LoginLimiter;
use crate::live::{NoLiveRooms, Revocations, SharedLiveRooms};

/// Settings of the web layer.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The data dir: uploads go to `uploads/` below it; recording paths are
    /// relative to it.
    pub data_dir: PathBuf,
    /// Mark cookies `Secure` (set when the panel is served over HTTPS, e.g.
    /// behind a TLS-terminating proxy).
    pub secure_cookies: bool,
    /// Base of the follow/control URLs handed out (`https://pbx.example.org`).
    /// When absent, the request's `Host` header is used.
    pub public_url: Option<String>,
    /// Largest accepted announcement or music upload.
    pub max_upload_bytes: usize,
    /// How long a panel login lasts.
    pub session_ttl: Duration,
}

impl WebConfig {
    /// Defaults for a data dir: cookies not `Secure`, URLs from the `Host`
    /// header, 20 MiB uploads, 12-hour sessions.
    pub fn new(data_dir: impl Into<PathBuf>) -> WebConfig {
        WebConfig {
            data_dir: data_dir.into(),
            secure_cookies: false,
            public_url: None,
            max_upload_bytes: 20 << 20,
            session_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

/// Called after every successful change to lines, rooms, numbers or trunks,
/// so the PBX reloads its directory.
pub type DirectoryHook = Arc<dyn Fn() + Send + Sync>;

/// What the handlers share.
#[derive(Clone)]
pub struct WebState {
    pub(crate) store: Store,
    pub(crate) metrics: PrometheusHandle,
    pub(crate) config: Arc<WebConfig>,
    pub(crate) live: SharedLiveRooms,
    pub(crate) on_directory_change: DirectoryHook,
    pub(crate) limiter: Arc<Mutex<LoginLimiter>>,
    pub(crate) revocations: Arc<Revocations>,
}

impl WebState {
    /// State over `store`, rendering `metrics` at `/metrics`. Live rooms are
    /// [`NoLiveRooms`] and the directory hook does nothing until set.
    pub fn new(store: Store, metrics: PrometheusHandle, config: WebConfig) -> WebState {
        WebState {
            store,
            metrics,
            config: Arc::new(config),
            live: Arc::new(NoLiveRooms::default()),
            on_directory_change: Arc::new(|| {}),
            limiter: Arc::new(Mutex::new(LoginLimiter::default())),
            revocations: Arc::new(Revocations::default()),
        }
    }

    /// Uses `live` for the follow/control pages and their sockets.
    pub fn with_live_rooms(mut self, live: SharedLiveRooms) -> WebState {
        self.live = live;
        self
    }

    /// Calls `hook` after each successful write to lines, rooms, numbers or
    /// trunks.
    pub fn with_directory_hook(mut self, hook: DirectoryHook) -> WebState {
        self.on_directory_change = hook;
        self
    }

    /// The store the handlers use.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn directory_changed(&self) {
        (self.on_directory_change)();
    }
}
