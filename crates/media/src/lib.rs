//! Sans-IO media core of Palaver: RTP/RTCP, codecs, jitter buffer, DTMF,
//! tones and prompts, the N-1 mixer, the recorder tap and the per-room
//! engine that ties them together.
//!
//! Meet first: [`room::MediaRoom`] (one conference room or two-party call:
//! bytes and `now` in through `handle_*`, packets, events and deadlines out
//! through `poll_*`), [`jitter::JitterBuffer`] (per-participant playout),
//! [`mixer::Mixer`] (exact N-1 with soft limiting and K loudest talkers) and
//! [`codec::Codec`].
//!
//! This crate opens no socket, reads no clock and starts no thread: time is
//! always an argument, so every behaviour is tested with synthetic time. The
//! only file I/O is in [`recorder::WavFile`] and [`source::PromptCache`],
//! which the runtime calls off the tick path. `palaver-media-rt` drives it.

pub mod codec;
pub mod dtmf;
pub mod error;
pub mod jitter;
pub mod mixer;
pub mod recorder;
pub mod room;
pub mod rtcp;
pub mod rtp;
pub mod source;

pub use error::{Error, Result};
