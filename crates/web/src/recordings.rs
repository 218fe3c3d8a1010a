//! Recording files (SPEC C10) for both front ends: where a recording's audio
//! is on disk ([`audio_path`], never outside the data dir), serving it with
//! range support for the browser's `<audio>` seek bar ([`serve_audio`]), and
//! deleting row and file together ([`delete_recording`]).
//!
//! Not here: making recordings (the conference layer does that).

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use palaver_store::{Recording, RecordingId};
use tower_http::services::ServeFile;

use crate::error::{Error, Result};
use crate::state::WebState;
use crate::uploads::remove_file;

/// The audio file of `recording`: its stored path, relative to the data dir,
/// refused if it would leave the data dir.
pub fn audio_path(state: &WebState, recording: &Recording) -> Result<PathBuf> {
    let data_dir = &state.config.data_dir;
    let path = data_dir.join(&recording.path);
    let escapes = std::path::Path::new(&recording.path)
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir));
    if escapes || !path.starts_with(data_dir) {
        return Err(Error::Internal(format!(
            "recording {} has a path outside the data dir: {:?}",
            recording.id, recording.path
        )));
    }
    Ok(path)
}

/// Serves recording `id`'s audio (`Range` requests included). With
/// `download`, asks the browser to save it.
pub async fn serve_audio(
    state: &WebState,
    id: RecordingId,
    download: bool,
    request: Request,
) -> Result<Response> {
    let recording = state.store.recording(id).await?;
    let path = audio_path(state, &recording)?;
    if !tokio::fs::try_exists(&path).await? {
        return Err(Error::NotFound {
            what: "recording file",
        });
    }
    // The content type is guessed from the extension (`audio/wav`).
    let response = ServeFile::new(&path).try_call(request).await?;
    let mut response = response.map(Body::new).into_response();
    if download {
        let name = format!("recording-{}-{}.wav", id.0, recording.started_at);
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(response)
}

/// Deletes recording `id`: the row, then the file. A recording still being
/// written is refused with a conflict.
pub async fn delete_recording(state: &WebState, id: RecordingId) -> Result<Recording> {
    let recording = state.store.recording(id).await?;
    if recording.ended_at.is_none() {
        return Err(Error::Conflict {
            field: "recording".into(),
            message: "this recording is still in progress; stop it first".into(),
        });
    }
    let path = audio_path(state, &recording)?;
    let deleted = state.store.delete_recording(id).await?;
    remove_file(&path).await;
    Ok(deleted)
}
