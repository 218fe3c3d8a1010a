//! Persistent storage for Palaver: sqlx repositories and migrations for
//! SQLite (the default, one file in the data dir) and PostgreSQL (when the
//! configured `database_url` says `postgres://…`).
//!
//! Meet [`Store`] first: a cheap-to-clone handle over the connection pool,
//! opened with [`Store::open`], which also applies the embedded migrations.
//! Every table is reached through `async` methods on it, grouped by module
//! ([`lines`], [`rooms`], [`numbers`], [`trunks`], [`bindings`],
//! [`recordings`], [`mail`], [`admin`], [`cdrs`], [`settings`]). Writes take
//! a `…Fields`/`…Settings` input type that validates itself, so every failure
//! comes back as one [`StoreError`]: `Invalid { field, message }` for bad
//! input, `Conflict { what, message }` for taken values (including an
//! extension used by a line *and* a room), `NotFound`, or a database error.
//!
//! Timestamps are Unix milliseconds (`i64`) on both backends; ids are `i64`
//! newtypes ([`LineId`], [`RoomId`], …). Functions that depend on the time
//! (binding expiry, due mail, sessions) take `now` as an argument.
//!
//! Not here: SIP, hashing of passwords and tokens, sending mail, audio files.
//! The store keeps what those layers decide.
//!
//! ```no_run
//! # async fn demo() -> Result<(), palaver_store::StoreError> {
//! use palaver_store::{RoomSettings, Store};
//! let store = Store::open(None, std::path::Path::new("/var/lib/palaver")).await?;
//! let mut settings = RoomSettings::new("Weekly");
//! settings.extension = Some("800".into());
//! let room = store.create_room(&settings).await?;
//! assert_eq!(store.room_by_extension("800").await?.map(|r| r.id), Some(room.id));
//! # Ok(()) }
//! ```

mod error;
mod extensions;
mod ids;
mod store;

pub mod admin;
pub mod bindings;
pub mod cdrs;
pub mod fields;
pub mod lines;
pub mod mail;
pub mod numbers;
pub mod recordings;
pub mod rooms;
pub mod settings;
pub mod trunks;

pub use admin::{AdminUser, ApiToken, Session};
pub use bindings::Binding;
pub use cdrs::{Cdr, Disposition, NewCdr};
pub use error::{Result, StoreError};
pub use extensions::ExtensionOwner;
pub use fields::{Language, Transport};
pub use ids::{
    AdminUserId, ApiTokenId, CdrId, LineId, MailId, NumberId, RecordingId, RoomId, TrunkId,
};
pub use lines::{Line, LineFields};
pub use mail::{Backoff, NewMail, OutboxMail};
pub use numbers::{Destination, Number, NumberFields};
pub use recordings::{FinishedRecording, NewRecording, Recording};
pub use rooms::{Room, RoomSettings, RoomToken};
pub use store::{Backend, SQLITE_FILE_NAME, Store, now_ms};
pub use trunks::{Trunk, TrunkFields};
