//! The crate's one error type. Malformed network input is reported through
//! these variants by the parsers; the room counts and drops such packets
//! instead of propagating them, so a bad packet never stops a tick.

use std::path::PathBuf;

/// Everything that can go wrong in the media core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A packet was shorter than its headers claim.
    #[error("packet truncated")]
    Truncated,
    /// The RTP/RTCP version field was not 2.
    #[error("unsupported RTP version {0}")]
    BadVersion(u8),
    /// A length, count or padding field is inconsistent with the packet.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The caller's buffer cannot hold what must be written into it.
    #[error("buffer too small: need {need} bytes")]
    BufferTooSmall {
        /// Bytes required.
        need: usize,
    },
    /// Opus reported an error (creation, encode or decode).
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    /// A resampler could not be built or run for this pair of rates.
    #[error("resampler {from} Hz -> {to} Hz: {reason}")]
    Resampler {
        /// Input rate.
        from: u32,
        /// Output rate.
        to: u32,
        /// What rubato said.
        reason: String,
    },
    /// The room's sample rate is not one the engine mixes at.
    #[error("unsupported room sample rate {0} Hz (use 8000, 16000 or 48000)")]
    UnsupportedRate(u32),
    /// A ptime the codec cannot be packetised with.
    #[error("unsupported ptime {ptime} ms for {codec}")]
    UnsupportedPtime {
        /// Codec name.
        codec: &'static str,
        /// Requested packet time.
        ptime: u32,
    },
    /// A WAV file could not be read or has a format we do not play.
    #[error("wav {path}: {reason}")]
    Wav {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file-system error while recording or repairing.
    #[error("i/o on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A command named a participant the room does not have.
    #[error("unknown participant {0}")]
    UnknownParticipant(u32),
    /// A participant id was added twice.
    #[error("participant {0} already in the room")]
    DuplicateParticipant(u32),
    /// A DTMF digit outside 0-9, *, #, A-D.
    #[error("invalid DTMF digit {0:?}")]
    InvalidDigit(char),
}

/// Result alias for the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
