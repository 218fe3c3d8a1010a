//! Conference recordings (SPEC C9, C10): one row per recorded file, created
//! when recording starts and finished when it stops. [`Recording`] is a stored
//! row, [`NewRecording`] what the recorder knows at start. The WAV file itself
//! is the media engine's; the store only keeps its path and metadata. A row
//! outlives its room (the link is cleared, the room name kept) so recordings
//! of deleted rooms can still be listed and removed.

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError, is_foreign_key_violation};
use crate::ids::{RecordingId, RoomId};
use crate::store::{Store, on_pool};

/// A recording as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    /// Row id.
    pub id: RecordingId,
    /// The room recorded; `None` once that room was deleted.
    pub room_id: Option<RoomId>,
    /// The room's name when recording started.
    pub room_name: String,
    /// Path of the audio file (relative to the data dir, by convention).
    pub path: String,
    /// Start, Unix ms.
    pub started_at: i64,
    /// End, Unix ms; `None` while recording (or after a crash, until repaired).
    pub ended_at: Option<i64>,
    /// Audio duration; 0 until finished.
    pub duration_ms: i64,
    /// File size; 0 until finished.
    pub size_bytes: i64,
    /// JSON array describing who took part; `[]` until finished.
    pub participants: String,
}

/// What the recorder knows when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRecording {
    /// The room being recorded.
    pub room_id: RoomId,
    /// Its name now (kept if the room is renamed or deleted).
    pub room_name: String,
    /// Where the audio goes.
    pub path: String,
    /// Start, Unix ms.
    pub started_at: i64,
}

/// What the recorder knows when it stops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedRecording {
    /// End, Unix ms.
    pub ended_at: i64,
    /// Audio duration.
    pub duration_ms: i64,
    /// File size.
    pub size_bytes: i64,
    /// A JSON array (the conference layer decides the element shape).
    pub participants: String,
}

#[derive(sqlx::FromRow)]
struct RecordingRow {
    id: i64,
    room_id: Option<i64>,
    room_name: String,
    path: String,
    started_at: i64,
    ended_at: Option<i64>,
    duration_ms: i64,
    size_bytes: i64,
    participants: String,
}

impl From<RecordingRow> for Recording {
    fn from(r: RecordingRow) -> Recording {
        Recording {
            id: RecordingId(r.id),
            room_id: r.room_id.map(RoomId),
            room_name: r.room_name,
            path: r.path,
            started_at: r.started_at,
            ended_at: r.ended_at,
            duration_ms: r.duration_ms,
            size_bytes: r.size_bytes,
            participants: r.participants,
        }
    }
}

const SELECT_RECORDING: &str = "SELECT id, room_id, room_name, path, started_at, ended_at, \
                                duration_ms, size_bytes, participants FROM recordings";

impl Store {
    /// Records that a recording started. `Invalid { field: "room_id" }` if
    /// the room does not exist.
    pub async fn create_recording(&self, new: &NewRecording) -> Result<Recording> {
        if new.path.trim().is_empty() {
            return Err(StoreError::invalid("path", "is required"));
        }
        let result: Result<i64> = async {
            Ok(on_pool!(self, |pool| {
                sqlx::query_scalar(
                    "INSERT INTO recordings (room_id, room_name, path, started_at) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(new.room_id.0)
                .bind(&new.room_name)
                .bind(&new.path)
                .bind(new.started_at)
                .fetch_one(pool)
                .await?
            }))
        }
        .await;
        let id = result.map_err(|e| {
            if is_foreign_key_violation(&e) {
                StoreError::invalid("room_id", format!("room {} does not exist", new.room_id))
            } else {
                e
            }
        })?;
        Ok(Recording {
            id: RecordingId(id),
            room_id: Some(new.room_id),
            room_name: new.room_name.clone(),
            path: new.path.clone(),
            started_at: new.started_at,
            ended_at: None,
            duration_ms: 0,
            size_bytes: 0,
            participants: "[]".to_owned(),
        })
    }

    /// Records that a recording stopped. `Invalid { field: "participants" }`
    /// unless it is a JSON array; `NotFound` if the row is gone.
    pub async fn finish_recording(
        &self,
        id: RecordingId,
        finished: &FinishedRecording,
    ) -> Result<Recording> {
        match serde_json::from_str::<serde_json::Value>(&finished.participants) {
            Ok(serde_json::Value::Array(_)) => {}
            _ => {
                return Err(StoreError::invalid("participants", "must be a JSON array"));
            }
        }
        if finished.duration_ms < 0 || finished.size_bytes < 0 {
            let field = if finished.duration_ms < 0 {
                "duration_ms"
            } else {
                "size_bytes"
            };
            return Err(StoreError::invalid(field, "must not be negative"));
        }
        let row: Option<RecordingRow> = on_pool!(self, |pool| {
            sqlx::query_as(
                "UPDATE recordings SET ended_at = $2, duration_ms = $3, size_bytes = $4, \
                 participants = $5 WHERE id = $1 RETURNING id, room_id, room_name, path, \
                 started_at, ended_at, duration_ms, size_bytes, participants",
            )
            .bind(id.0)
            .bind(finished.ended_at)
            .bind(finished.duration_ms)
            .bind(finished.size_bytes)
            .bind(&finished.participants)
            .fetch_optional(pool)
            .await?
        });
        row.map(Recording::from)
            .ok_or(StoreError::NotFound { what: "recording" })
    }

    /// The recording with this id, or `NotFound`.
    pub async fn recording(&self, id: RecordingId) -> Result<Recording> {
        let sql = format!("{SELECT_RECORDING} WHERE id = $1");
        let row: Option<RecordingRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id.0).fetch_optional(pool).await?
        });
        row.map(Recording::from)
            .ok_or(StoreError::NotFound { what: "recording" })
    }

    /// Recordings, newest first: of one room, or all of them with `None`.
    pub async fn recordings(&self, room: Option<RoomId>) -> Result<Vec<Recording>> {
        let rows: Vec<RecordingRow> = match room {
            Some(room) => {
                let sql = format!(
                    "{SELECT_RECORDING} WHERE room_id = $1 ORDER BY started_at DESC, id DESC"
                );
                on_pool!(self, |pool| {
                    sqlx::query_as(&sql).bind(room.0).fetch_all(pool).await?
                })
            }
            None => {
                let sql = format!("{SELECT_RECORDING} ORDER BY started_at DESC, id DESC");
                on_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await?)
            }
        };
        Ok(rows.into_iter().map(Recording::from).collect())
    }

    /// Recordings never finished: after a crash, the recorder repairs these
    /// files and then calls [`Store::finish_recording`].
    pub async fn unfinished_recordings(&self) -> Result<Vec<Recording>> {
        let sql = format!("{SELECT_RECORDING} WHERE ended_at IS NULL ORDER BY id");
        let rows: Vec<RecordingRow> =
            on_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await?);
        Ok(rows.into_iter().map(Recording::from).collect())
    }

    /// Deletes the row and returns it, so the caller can delete the file.
    pub async fn delete_recording(&self, id: RecordingId) -> Result<Recording> {
        let row: Option<RecordingRow> = on_pool!(self, |pool| {
            sqlx::query_as(
                "DELETE FROM recordings WHERE id = $1 RETURNING id, room_id, room_name, path, \
                 started_at, ended_at, duration_ms, size_bytes, participants",
            )
            .bind(id.0)
            .fetch_optional(pool)
            .await?
        });
        row.map(Recording::from)
            .ok_or(StoreError::NotFound { what: "recording" })
    }
}
