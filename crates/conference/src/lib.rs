//! Conference rooms (SPEC C1–C15, C17): everything a caller experiences
//! after the PBX answered a call to a room, as a sans-IO state machine; the
//! room events and snapshots the web layer shows; the end-of-conference
//! report and its mail delivery; and the conversion of uploaded greetings
//! and music.
//!
//! Meet first: [`Conference`] (every live room: `handle_join`,
//! `handle_media_event`, `handle_hangup`, `handle_control`,
//! `handle_timeout` in; [`ConferenceAction`]s and deadlines out through
//! `poll_action`/`poll_timeout`), [`RoomEvent`] and [`RoomSnapshot`] (what
//! a live page shows), [`ConferenceReport`] (sent by [`mail::Mailer`]) and
//! [`audio_upload::convert`].
//!
//! ```text
//!  pbx (SIP) ──handle_join/hangup──▶ Conference ──Media{RoomCommand}──▶ MediaRoom
//!  MediaRoom ──handle_media_event──▶     │      ──HangUp──────────────▶ pbx
//!  web ───────handle_control───────▶     │      ──Event/snapshot──────▶ web
//!                                        └──────Recording*/Report─────▶ runtime, mail
//! ```
//!
//! The state machine opens no socket, reads no clock and starts no task:
//! `now: Instant` is an argument and Unix times come from a [`WallClock`]
//! anchor, so every behaviour is tested with synthetic time. Prompt files
//! are loaded through a [`SoundLoader`]. Only [`mail`] uses tokio. Not
//! here: SIP, SDP, mixing (the media engine), storing rows (the integrator
//! executes the actions), HTTP.

pub mod audio_upload;
pub mod clock;
pub mod conference;
pub mod events;
pub mod keys;
pub mod mail;
pub mod report;

pub use audio_upload::{ConvertedAudio, UploadError, UploadLimits};
pub use clock::WallClock;
pub use conference::{Conference, ConferenceAction, ConferenceConfig, JoinRequest, SoundLoader};
pub use events::{
    ControlCommand, ControlError, LeaveReason, Origin, ParticipantView, RoomEvent, RoomEventKind,
    RoomSnapshot,
};
pub use keys::KeyAction;
pub use mail::{MailError, MailSettings, Mailer, SmtpSettings, TlsMode};
pub use report::{ConferenceReport, ParticipantRecord, RenderedEmail, ReportRecording};

/// Every error of the crate, for callers that handle them together.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A control command was refused.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// An upload was refused.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// Mail could not be queued or sent.
    #[error(transparent)]
    Mail(#[from] MailError),
}
