//! The runtime's error type.

use std::path::PathBuf;

/// What can go wrong starting the engine or talking to it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configured port range cannot hold an RTP/RTCP pair.
    #[error("invalid RTP port range {low}-{high}")]
    BadPortRange {
        /// Lowest port.
        low: u16,
        /// Highest port.
        high: u16,
    },
    /// Every port pair in the range is taken.
    #[error("no free RTP port in {low}-{high}")]
    PortsExhausted {
        /// Lowest port.
        low: u16,
        /// Highest port.
        high: u16,
    },
    /// An OS error while creating the poller, a socket or a thread.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The worker owning the room has stopped (engine shut down).
    #[error("media worker is gone")]
    WorkerGone,
    /// The room is closed.
    #[error("room {0} is closed")]
    RoomClosed(u64),
    /// This command needs its own method (it binds or frees sockets).
    #[error("{0}")]
    WrongMethod(&'static str),
    /// Rejected by the media core (bad digit, unsupported ptime...).
    #[error(transparent)]
    Media(#[from] palaver_media::Error),
    /// A recording file could not be opened.
    #[error("recording {path}: {reason}")]
    Recording {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Result alias for the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
