//! The crate's one error type.

use std::net::SocketAddr;

/// What can stop a load run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket, epoll, timer or file operation failed.
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Media setup failed (an Opus encoder could not be built, …).
    #[error("media: {0}")]
    Media(#[from] palaver_media::Error),
    /// An address the load generator cannot use (it speaks IPv4 only).
    #[error("unsupported address {0} (IPv4 only)")]
    Address(SocketAddr),
    /// The run's settings do not make sense.
    #[error("invalid settings: {0}")]
    Settings(String),
    /// A WAV file could not be read or written.
    #[error("wav {path}: {reason}")]
    Wav { path: String, reason: String },
    /// A worker thread died.
    #[error("worker thread panicked")]
    Worker,
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Io { what, source }
    }
}

/// Short for `Result<T, Error>`.
pub type Result<T> = std::result::Result<T, Error>;
