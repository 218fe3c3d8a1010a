//! Room operations shared by the API and the panel, so both apply the same
//! checks and side effects: [`RoomInput`] (every admin setting of C1–C15 as
//! typed, validated into the store's `RoomSettings` with *all* field errors
//! at once), the follow/control URLs of C16 ([`generate_urls`],
//! [`delete_urls`]), and the C17 warning text.
//!
//! Not here: uploads (`crate::uploads`), rendering.

use palaver_store::fields;
use palaver_store::rooms::MAX_PARTICIPANTS;
use palaver_store::{Language, Room, RoomId, RoomSettings, RoomToken};
use serde::{Deserialize, Serialize};

use crate::auth::{random_url_token, sha256_hex};
use crate::error::{Error, FieldErrors, Result};
use crate::state::WebState;

/// What the panel shows for a room without an access PIN (C17).
pub const NO_PIN_WARNING: &str = "No PIN: anyone who knows the number can join.";

/// Every setting an admin gives a room (C1–C15), as typed. Uploaded files are
/// not set here but through the upload endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RoomInput {
    /// 1–100 characters.
    pub name: String,
    /// Internal extension, 2–15 digits; unique across lines and rooms (C1).
    pub extension: Option<String>,
    /// Access PIN (C3): 1–20 digits; empty or "0" means no PIN.
    pub access_pin: Option<String>,
    /// Host PIN (C4): same rules; must differ from the access PIN.
    pub host_pin: Option<String>,
    /// 2–1000 (C2).
    #[schema(minimum = 2, maximum = 1000, default = 25)]
    pub max_participants: u32,
    /// Prompt language (C13): en, fr, de, es, it or nl.
    #[schema(example = "en")]
    pub language: String,
    /// Participants join muted (C6).
    pub mute_on_entry: bool,
    /// Non-hosts wait with music until a host joins (C5); needs a host PIN.
    pub wait_for_host: bool,
    /// Tone when someone joins or leaves (C7).
    pub announce_join_leave: bool,
    /// Callers with withheld number may join (C12).
    #[schema(default = true)]
    pub allow_anonymous: bool,
    /// Recording is allowed (C9).
    pub recording_enabled: bool,
    /// Recording starts with the first participant (C9); needs recording.
    pub recording_autostart: bool,
    /// End-of-conference report address (C15).
    pub report_email: Option<String>,
}

impl Default for RoomInput {
    fn default() -> Self {
        RoomInput::from(&RoomSettings::default())
    }
}

impl From<&RoomSettings> for RoomInput {
    fn from(s: &RoomSettings) -> RoomInput {
        RoomInput {
            name: s.name.clone(),
            extension: s.extension.clone(),
            access_pin: s.access_pin.clone(),
            host_pin: s.host_pin.clone(),
            max_participants: s.max_participants,
            language: s.language.code().to_owned(),
            mute_on_entry: s.mute_on_entry,
            wait_for_host: s.wait_for_host,
            announce_join_leave: s.announce_join_leave,
            allow_anonymous: s.allow_anonymous,
            recording_enabled: s.recording_enabled,
            recording_autostart: s.recording_autostart,
            report_email: s.report_email.clone(),
        }
    }
}

fn blank(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Keeps the message of a failed field check.
fn collect<T>(errors: &mut FieldErrors, r: palaver_store::Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(palaver_store::StoreError::Invalid { field, message }) => {
            errors.insert(field.to_owned(), message);
            None
        }
        Err(other) => {
            errors.insert("body".to_owned(), other.to_string());
            None
        }
    }
}

impl RoomInput {
    /// The store's settings, keeping `existing`'s uploaded files, or every
    /// problem found, one message per field.
    pub fn to_settings(&self, existing: Option<&RoomSettings>) -> Result<RoomSettings> {
        let mut errors = FieldErrors::new();
        collect(&mut errors, fields::label("name", &self.name, 1, 100));
        if let Some(e) = blank(&self.extension) {
            collect(&mut errors, fields::extension("extension", e));
        }
        collect(
            &mut errors,
            fields::pin("access_pin", self.access_pin.as_deref()),
        );
        collect(
            &mut errors,
            fields::pin("host_pin", self.host_pin.as_deref()),
        );
        if !MAX_PARTICIPANTS.contains(&self.max_participants) {
            errors.insert(
                "max_participants".to_owned(),
                format!(
                    "must be between {} and {}",
                    MAX_PARTICIPANTS.start(),
                    MAX_PARTICIPANTS.end()
                ),
            );
        }
        let language = collect(&mut errors, self.language.parse::<Language>());
        if let Some(e) = blank(&self.report_email) {
            collect(&mut errors, fields::email("report_email", e));
        }
        if !errors.is_empty() {
            return Err(Error::Invalid { fields: errors });
        }
        let settings = RoomSettings {
            name: self.name.clone(),
            extension: blank(&self.extension).map(str::to_owned),
            access_pin: self.access_pin.clone(),
            host_pin: self.host_pin.clone(),
            max_participants: self.max_participants,
            language: language.unwrap_or_default(),
            mute_on_entry: self.mute_on_entry,
            wait_for_host: self.wait_for_host,
            announce_join_leave: self.announce_join_leave,
            announcement_upload: existing.and_then(|e| e.announcement_upload.clone()),
            moh_upload: existing.and_then(|e| e.moh_upload.clone()),
            allow_anonymous: self.allow_anonymous,
            recording_enabled: self.recording_enabled,
            recording_autostart: self.recording_autostart,
            report_email: blank(&self.report_email).map(str::to_owned),
        };
        // The cross-field rules (host PIN ≠ access PIN, wait-for-host needs a
        // host PIN…) are the store's; it reports the first one.
        Ok(settings.validated()?)
    }
}

/// Whether the room is open to anyone who knows its number (C17).
pub fn is_open(room: &Room) -> bool {
    room.settings.access_pin.is_none()
}

/// The two secret URLs of a room, as paths (`/follow/<token>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomUrls {
    /// Read-only live view.
    pub follow_path: String,
    /// Live view with controls.
    pub control_path: String,
}

/// Generates fresh follow and control tokens for `room` (C16): 128 random
/// bits each, only their SHA-256 stored. Old URLs stop resolving at once and
/// sockets open on them are closed.
pub async fn generate_urls(state: &WebState, room: RoomId) -> Result<RoomUrls> {
    let follow = random_url_token();
    let control = random_url_token();
    for (kind, token) in [(RoomToken::Follow, &follow), (RoomToken::Control, &control)] {
        state
            .store
            .set_room_token(room, kind, Some(&sha256_hex(token)))
            .await?;
        // After the store write: see `Revocations` for why this order.
        state.revocations.revoke(room, kind);
    }
    Ok(RoomUrls {
        follow_path: format!("/follow/{follow}"),
        control_path: format!("/control/{control}"),
    })
}

/// Deletes both URLs of `room`; sockets open on them are closed.
pub async fn delete_urls(state: &WebState, room: RoomId) -> Result<()> {
    for kind in [RoomToken::Follow, RoomToken::Control] {
        state.store.set_room_token(room, kind, None).await?;
        state.revocations.revoke(room, kind);
    }
    Ok(())
}

/// Closes sockets of a room that was just deleted (its tokens went with it).
pub fn delete_urls_after_room_delete(state: &WebState, room: RoomId) {
    state.revocations.revoke(room, RoomToken::Follow);
    state.revocations.revoke(room, RoomToken::Control);
}

/// The room a follow or control token opens, if it is current.
pub async fn room_for_token(state: &WebState, kind: RoomToken, token: &str) -> Result<Room> {
    // Tokens are 32 hex digits; anything else cannot match, so skip the query.
    if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::NotFound { what: "page" });
    }
    state
        .store
        .room_by_token(kind, &sha256_hex(token))
        .await?
        .ok_or(Error::NotFound { what: "page" })
}

/// `https://host` for absolute URLs: the configured public URL, else the
/// request's `Host`.
pub fn base_url(state: &WebState, headers: &axum::http::HeaderMap) -> String {
    if let Some(base) = &state.config.public_url {
        return base.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let scheme = if state.config.secure_cookies {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let input = RoomInput {
            name: String::new(),
            extension: Some("8x".into()),
            access_pin: Some("12ab".into()),
            max_participants: 1001,
            language: "pt".into(),
            report_email: Some("nobody".into()),
            ..RoomInput::default()
        };
        let Err(Error::Invalid { fields }) = input.to_settings(None) else {
            panic!("expected Invalid");
        };
        let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "access_pin",
                "extension",
                "language",
                "max_participants",
                "name",
                "report_email"
            ]
        );
        assert_eq!(fields["max_participants"], "must be between 2 and 1000");
    }

    #[test]
    fn cross_field_rules_come_from_the_store() {
        let input = RoomInput {
            name: "r".into(),
            wait_for_host: true,
            ..RoomInput::default()
        };
        let Err(Error::Invalid { fields }) = input.to_settings(None) else {
            panic!("expected Invalid");
        };
        assert!(fields["wait_for_host"].starts_with("needs a host PIN"));
    }

    #[test]
    fn uploads_are_kept_from_the_existing_room() {
        let mut existing = RoomSettings::new("r");
        existing.moh_upload = Some("room1-music-aa.wav".into());
        let input = RoomInput::from(&existing);
        let s = input.to_settings(Some(&existing)).unwrap();
        assert_eq!(s.moh_upload.as_deref(), Some("room1-music-aa.wav"));
    }
}
