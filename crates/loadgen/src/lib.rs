//! `palaver-loadgen`: brings N simulated participants into R conference
//! rooms over real SIP and RTP, and measures what they get back — loss,
//! jitter, mouth-to-ear delay through the bridge, call-setup time — while
//! reporting its own CPU so a reader can tell it was not the bottleneck.
//!
//! Meet first:
//! - [`run::Settings`] and [`run::run`]: one run (conference, join-rate,
//!   call-rate or quality mode, or media straight to a UDP reflector) from
//!   start to [`report::Report`];
//! - [`uac::Uac`]: the sans-IO SIP client behind every call (INVITE, digest,
//!   ACK, BYE), on `palaver-sip` messages and digest;
//! - [`participant::ParticipantMedia`]: one participant's RTP, sans-IO —
//!   speech-like talk spurts ([`signal`]), PIN keys in RFC 4733, marker
//!   bursts and their detection ([`marker`]), loss and jitter ([`stats`]);
//! - [`quality`]: the references and alignment behind the PESQ scenario;
//! - [`probe`]: the server's CPU, memory and mixer timings over the window.
//!
//! The runtime ([`run`], on [`sys`]) is Linux-only: epoll, `timerfd`,
//! `recvmmsg`/`sendmmsg` and kernel receive timestamps, a few threads. It
//! only ever talks to loopback addresses. What it does not do: judge the
//! figures (the bench scripts compare them with the targets) or compute
//! PESQ (a Python script does, from the WAVs the quality mode writes).

pub mod error;
pub mod marker;
pub mod participant;
pub mod probe;
pub mod quality;
pub mod report;
pub mod run;
pub mod signal;
pub mod stats;
pub mod sys;
pub mod uac;

pub use error::{Error, Result};
