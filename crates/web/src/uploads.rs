//! Room announcement and music-on-hold uploads (SPEC C8, C11): the
//! conference layer's converter (`palaver_conference::audio_upload::convert`:
//! WAV/MP3/OGG/FLAC → levelled 8 and 16 kHz WAVs, with reasons for refusals)
//! run off the async threads, storage under `<data dir>/uploads/<rate>/`, and
//! the file name recorded in the room's settings.
//!
//! Not here: decoding audio (the conference layer), playing it.

use std::path::PathBuf;

use palaver_conference::audio_upload::{self, UploadError, UploadLimits};
use palaver_prompts::SampleRate;
use palaver_store::{Room, RoomId};
use rand::Rng;

use crate::error::{Error, Result};
use crate::state::WebState;

/// Which of a room's two uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadKind {
    /// The greeting that replaces the default one (C8).
    Announcement,
    /// Music on hold while waiting (C11).
    Music,
}

impl UploadKind {
    /// The URL segment and file-name part: `announcement` or `music`.
    pub fn as_str(self) -> &'static str {
        match self {
            UploadKind::Announcement => "announcement",
            UploadKind::Music => "music",
        }
    }

    /// Parses a URL segment.
    pub fn parse(s: &str) -> Option<UploadKind> {
        match s {
            "announcement" => Some(UploadKind::Announcement),
            "music" => Some(UploadKind::Music),
            _ => None,
        }
    }

    fn limits(self, max_bytes: usize) -> UploadLimits {
        let mut limits = match self {
            UploadKind::Announcement => UploadLimits::announcement(),
            UploadKind::Music => UploadLimits::music(),
        };
        limits.max_bytes = max_bytes;
        limits
    }
}

/// Maps the converter's refusals to our errors: the file's fault is a 422 on
/// the `file` field (413 when too large), our own failure a 500.
fn refusal(e: UploadError) -> Error {
    match e {
        UploadError::TooLarge { max, .. } => Error::PayloadTooLarge { limit_bytes: max },
        UploadError::Conversion(why) => Error::Internal(format!("converting an upload: {why}")),
        other => Error::invalid("file", other.to_string()),
    }
}

fn uploads_dir(state: &WebState) -> PathBuf {
    state.config.data_dir.join("uploads")
}

/// Deletes every rate's file of an upload named in a room's settings.
pub async fn remove_upload_files(state: &WebState, file_name: &str) {
    for &rate in SampleRate::ALL {
        remove_file(&audio_upload::upload_path(
            &uploads_dir(state),
            file_name,
            rate,
        ))
        .await;
    }
}

/// Checks, converts and stores an upload for `room`, records it in the room
/// and removes the file it replaces.
pub async fn store_upload(
    state: &WebState,
    room: RoomId,
    kind: UploadKind,
    bytes: &[u8],
) -> Result<Room> {
    let current = state.store.room(room).await?;
    let limits = kind.limits(state.config.max_upload_bytes);
    let owned = bytes.to_vec();
    let converted =
        crate::auth::blocking(move || audio_upload::convert(&owned, &limits).map_err(refusal))
            .await?;
    let dir = uploads_dir(state);
    let tag: u32 = rand::rng().random();
    let name = format!("room{}-{}-{tag:08x}.wav", room.0, kind.as_str());
    {
        let (dir, name) = (dir.clone(), name.clone());
        crate::auth::blocking(move || Ok(converted.save(&dir, &name)?)).await?;
    }

    let mut settings = current.settings.clone();
    let old = match kind {
        UploadKind::Announcement => settings.announcement_upload.replace(name.clone()),
        UploadKind::Music => settings.moh_upload.replace(name.clone()),
    };
    match state.store.update_room(room, &settings).await {
        Ok(updated) => {
            if let Some(old) = old {
                remove_upload_files(state, &old).await;
            }
            state.directory_changed();
            Ok(updated)
        }
        Err(e) => {
            remove_upload_files(state, &name).await;
            Err(e.into())
        }
    }
}

/// Removes a room's upload (the room goes back to the default prompt or music).
pub async fn remove_upload(state: &WebState, room: RoomId, kind: UploadKind) -> Result<Room> {
    let current = state.store.room(room).await?;
    let mut settings = current.settings.clone();
    let old = match kind {
        UploadKind::Announcement => settings.announcement_upload.take(),
        UploadKind::Music => settings.moh_upload.take(),
    };
    let Some(old) = old else {
        return Err(Error::NotFound { what: "upload" });
    };
    let updated = state.store.update_room(room, &settings).await?;
    remove_upload_files(state, &old).await;
    state.directory_changed();
    Ok(updated)
}

/// Deletes a file that may already be gone; other failures are logged, since
/// the database change they follow has happened.
pub(crate) async fn remove_file(path: &std::path::Path) {
    match tokio::fs::remove_file(path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "could not delete file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_file_field() {
        let e = refusal(UploadError::UnknownFormat);
        assert_eq!(e.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.fields()["file"].contains("not a WAV"));
        let e = refusal(UploadError::TooLarge { size: 9, max: 4 });
        assert!(matches!(e, Error::PayloadTooLarge { limit_bytes: 4 }));
        let e = refusal(UploadError::Conversion("bug".into()));
        assert_eq!(e.public_message(), "Something went wrong");
    }
}
