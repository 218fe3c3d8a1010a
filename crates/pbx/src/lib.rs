//! The PBX core: registrar, authentication, routing, and calls between
//! lines, trunks and rooms.
//!
//! - [`Pbx`] is the sans-IO core: SIP messages and time in, SIP bytes,
//!   store writes and deadlines out. Everything a call does is decided here
//!   and tested with synthetic time.
//! - [`Directory`] is the in-memory view of lines, trunks, numbers and
//!   rooms that routing reads; [`Registrar`] holds who is registered where;
//!   [`AuthGuard`] does digest authentication and blocks password guessing.
//! - [`runtime`] drives a `Pbx` on tokio with real sockets
//!   (`palaver-sip-rt`) and the store (`palaver-store`).
//!
//! Not here: parsing and transactions (`palaver-sip`), sockets
//! (`palaver-sip-rt`), SQL (`palaver-store`).

mod answered;
mod call;
mod core;
pub mod directory;
pub mod guard;
pub mod live;
pub mod media;
pub mod registrar;
pub mod runtime;

pub use answered::with_links;
pub use call::{CallKey, Caller, Side};
pub use core::{ACCEPT, ALLOW, Pbx, PbxConfig, StoreOp};
pub use directory::{Directory, Target};
pub use guard::{AuthGuard, AuthOutcome, GuardConfig};
pub use live::{LiveHub, LiveStart};
pub use media::{MediaControl, MediaError, MediaRoomId};
pub use registrar::{Registrar, Registration};
