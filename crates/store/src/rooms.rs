//! Conference rooms (SPEC C1–C15): every setting a room has, and the hashed
//! follow/control tokens of its secret URLs (C16). [`Room`] is a stored row,
//! [`RoomSettings`] what an admin sets, [`RoomToken`] names the two secret
//! URLs. The public numbers that reach a room are [`crate::Number`]s whose
//! destination is the room (see [`crate::Store::numbers_to`]).
//!
//! Validation lives here too, so the web panel, the API and the demo all get
//! the same messages: PIN rules (C3), participant limits (C2), and the
//! combinations that would make a room unusable.

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError, is_unique_violation};
use crate::fields::{self, Language};
use crate::ids::RoomId;
use crate::store::{Store, in_transaction, now_ms, on_pool};

/// Bounds on `max_participants` (SPEC C2).
pub const MAX_PARTICIPANTS: std::ops::RangeInclusive<u32> = 2..=1000;
/// Default `max_participants` (SPEC C2).
pub const DEFAULT_MAX_PARTICIPANTS: u32 = 25;

/// A room as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    /// Row id.
    pub id: RoomId,
    /// The admin settings (C1–C15), already validated and normalised.
    #[serde(flatten)]
    pub settings: RoomSettings,
    /// SHA-256 or similar hash of the follow URL's token, if one exists.
    pub follow_token_hash: Option<String>,
    /// Hash of the control URL's token, if one exists.
    pub control_token_hash: Option<String>,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

/// Everything an admin sets on a room. [`RoomSettings::new`] gives the
/// defaults of the spec; unset JSON fields take the same defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoomSettings {
    /// 1–100 characters; not unique.
    pub name: String,
    /// Internal extension (2–15 digits), unique across rooms and lines (C1).
    pub extension: Option<String>,
    /// Access PIN (C3): digits only, 1–20; `""` or `"0"` become `None`.
    pub access_pin: Option<String>,
    /// Host PIN (C4): same rules, and different from the access PIN.
    pub host_pin: Option<String>,
    /// 2–1000, default 25 (C2).
    pub max_participants: u32,
    /// Prompt language (C13), default English.
    pub language: Language,
    /// Participants join muted (C6).
    pub mute_on_entry: bool,
    /// Non-hosts wait, hearing music, until a host joins (C5); needs a host PIN.
    pub wait_for_host: bool,
    /// Tone on join and leave (C7).
    pub announce_join_leave: bool,
    /// File name of a converted greeting upload that replaces the default (C8).
    pub announcement_upload: Option<String>,
    /// File name of a converted music-on-hold upload (C11).
    pub moh_upload: Option<String>,
    /// Callers with withheld caller ID may join (C12); default true.
    pub allow_anonymous: bool,
    /// Recording is allowed in this room (C9).
    pub recording_enabled: bool,
    /// Recording starts with the first participant (C9); needs `recording_enabled`.
    pub recording_autostart: bool,
    /// Where the end-of-conference report goes (C15).
    pub report_email: Option<String>,
}

impl Default for RoomSettings {
    fn default() -> Self {
        RoomSettings::new("")
    }
}

impl RoomSettings {
    /// A room called `name` with the spec's defaults: no extension, no PINs,
    /// 25 participants, English, anonymous callers allowed, everything else off.
    pub fn new(name: impl Into<String>) -> RoomSettings {
        RoomSettings {
            name: name.into(),
            extension: None,
            access_pin: None,
            host_pin: None,
            max_participants: DEFAULT_MAX_PARTICIPANTS,
            language: Language::En,
            mute_on_entry: false,
            wait_for_host: false,
            announce_join_leave: false,
            announcement_upload: None,
            moh_upload: None,
            allow_anonymous: true,
            recording_enabled: false,
            recording_autostart: false,
            report_email: None,
        }
    }

    /// Checks every setting and returns them normalised (trimmed; empty
    /// optional text and PIN `"0"` become `None`), or the first problem as
    /// [`StoreError::Invalid`] naming the field.
    pub fn validated(&self) -> Result<RoomSettings> {
        let s = RoomSettings {
            name: fields::label("name", &self.name, 1, 100)?,
            extension: opt(&self.extension)
                .map(|e| fields::extension("extension", e))
                .transpose()?,
            access_pin: fields::pin("access_pin", self.access_pin.as_deref())?,
            host_pin: fields::pin("host_pin", self.host_pin.as_deref())?,
            max_participants: self.max_participants,
            language: self.language,
            mute_on_entry: self.mute_on_entry,
            wait_for_host: self.wait_for_host,
            announce_join_leave: self.announce_join_leave,
            announcement_upload: opt(&self.announcement_upload)
                .map(|f| fields::file_name("announcement_upload", f))
                .transpose()?,
            moh_upload: opt(&self.moh_upload)
                .map(|f| fields::file_name("moh_upload", f))
                .transpose()?,
            allow_anonymous: self.allow_anonymous,
            recording_enabled: self.recording_enabled,
            recording_autostart: self.recording_autostart,
            report_email: opt(&self.report_email)
                .map(|e| fields::email("report_email", e))
                .transpose()?,
        };
        if !MAX_PARTICIPANTS.contains(&s.max_participants) {
            return Err(StoreError::invalid(
                "max_participants",
                format!(
                    "must be from {} to {} (got {})",
                    MAX_PARTICIPANTS.start(),
                    MAX_PARTICIPANTS.end(),
                    s.max_participants
                ),
            ));
        }
        if s.host_pin.is_some() && s.host_pin == s.access_pin {
            return Err(StoreError::invalid(
                "host_pin",
                "must differ from the access PIN, or every caller would be a host",
            ));
        }
        if s.wait_for_host && s.host_pin.is_none() {
            return Err(StoreError::invalid(
                "wait_for_host",
                "needs a host PIN: without one nobody can join as host and everyone would wait",
            ));
        }
        if s.recording_autostart && !s.recording_enabled {
            return Err(StoreError::invalid(
                "recording_autostart",
                "needs recording to be enabled",
            ));
        }
        Ok(s)
    }

    /// Checks every setting; the same rules [`Store::create_room`] applies.
    pub fn validate(&self) -> Result<()> {
        self.validated().map(|_| ())
    }
}

/// The two secret URLs of a room (C16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomToken {
    /// Read-only live view.
    Follow,
    /// Live view plus mute, kick, lock and record.
    Control,
}

impl RoomToken {
    fn column(self) -> &'static str {
        match self {
            RoomToken::Follow => "follow_token_hash",
            RoomToken::Control => "control_token_hash",
        }
    }
}

#[derive(sqlx::FromRow)]
struct RoomRow {
    id: i64,
    name: String,
    extension: Option<String>,
    access_pin: Option<String>,
    host_pin: Option<String>,
    max_participants: i64,
    language: String,
    mute_on_entry: bool,
    wait_for_host: bool,
    announce_join_leave: bool,
    announcement_upload: Option<String>,
    moh_upload: Option<String>,
    allow_anonymous: bool,
    recording_enabled: bool,
    recording_autostart: bool,
    report_email: Option<String>,
    follow_token_hash: Option<String>,
    control_token_hash: Option<String>,
    created_at: i64,
}

impl TryFrom<RoomRow> for Room {
    type Error = StoreError;
    fn try_from(r: RoomRow) -> Result<Room> {
        Ok(Room {
            id: RoomId(r.id),
            settings: RoomSettings {
                name: r.name,
                extension: r.extension,
                access_pin: r.access_pin,
                host_pin: r.host_pin,
                max_participants: u32::try_from(r.max_participants).map_err(|_| {
                    StoreError::corrupt("max_participants", &r.max_participants.to_string())
                })?,
                language: r
                    .language
                    .parse()
                    .map_err(|_| StoreError::corrupt("language", &r.language))?,
                mute_on_entry: r.mute_on_entry,
                wait_for_host: r.wait_for_host,
                announce_join_leave: r.announce_join_leave,
                announcement_upload: r.announcement_upload,
                moh_upload: r.moh_upload,
                allow_anonymous: r.allow_anonymous,
                recording_enabled: r.recording_enabled,
                recording_autostart: r.recording_autostart,
                report_email: r.report_email,
            },
            follow_token_hash: r.follow_token_hash,
            control_token_hash: r.control_token_hash,
            created_at: r.created_at,
        })
    }
}

const ROOM_COLUMNS: &str = "id, name, extension, access_pin, host_pin, max_participants, \
     language, mute_on_entry, wait_for_host, announce_join_leave, announcement_upload, \
     moh_upload, allow_anonymous, recording_enabled, recording_autostart, report_email, \
     follow_token_hash, control_token_hash, created_at";

/// The room columns an admin sets, in the order of the `$2…$16` binds below.
const SETTINGS_COLUMNS: [&str; 15] = [
    "name",
    "extension",
    "access_pin",
    "host_pin",
    "max_participants",
    "language",
    "mute_on_entry",
    "wait_for_host",
    "announce_join_leave",
    "announcement_upload",
    "moh_upload",
    "allow_anonymous",
    "recording_enabled",
    "recording_autostart",
    "report_email",
];

/// Binds the settings as `$2…$16` (`$1` is the id or the creation time).
macro_rules! bind_settings {
    ($query:expr, $s:expr) => {
        $query
            .bind(&$s.name)
            .bind(&$s.extension)
            .bind(&$s.access_pin)
            .bind(&$s.host_pin)
            .bind(i64::from($s.max_participants))
            .bind($s.language.code())
            .bind($s.mute_on_entry)
            .bind($s.wait_for_host)
            .bind($s.announce_join_leave)
            .bind(&$s.announcement_upload)
            .bind(&$s.moh_upload)
            .bind($s.allow_anonymous)
            .bind($s.recording_enabled)
            .bind($s.recording_autostart)
            .bind(&$s.report_email)
    };
}

/// Optional text with blanks meaning "not set".
fn opt(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl Store {
    /// Creates a room. `Conflict { what: "extension" }` when a line or room
    /// already has its extension.
    pub async fn create_room(&self, settings: &RoomSettings) -> Result<Room> {
        let s = settings.validated()?;
        let created_at = now_ms();
        let placeholders: Vec<String> = (2..=16).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO rooms (created_at, {}) VALUES ($1, {}) RETURNING id",
            SETTINGS_COLUMNS.join(", "),
            placeholders.join(", ")
        );
        let result: Result<i64> = async {
            Ok(in_transaction!(self, |tx| {
                let id: i64 = bind_settings!(sqlx::query_scalar(&sql).bind(created_at), s)
                    .fetch_one(&mut *tx)
                    .await?;
                if let Some(extension) = &s.extension {
                    sqlx::query("INSERT INTO extensions (extension, room_id) VALUES ($1, $2)")
                        .bind(extension)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                id
            }))
        }
        .await;
        match result {
            Ok(id) => Ok(Room {
                id: RoomId(id),
                settings: s,
                follow_token_hash: None,
                control_token_hash: None,
                created_at,
            }),
            Err(e) if is_unique_violation(&e) => {
                let extension = s.extension.as_deref().unwrap_or_default();
                Err(self.extension_conflict(extension).await)
            }
            Err(e) => Err(e),
        }
    }

    /// Replaces a room's settings (not its tokens). `NotFound` if it does not
    /// exist.
    pub async fn update_room(&self, id: RoomId, settings: &RoomSettings) -> Result<Room> {
        let s = settings.validated()?;
        let assignments: Vec<String> = SETTINGS_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}", i + 2))
            .collect();
        let sql = format!(
            "UPDATE rooms SET {} WHERE id = $1 RETURNING {ROOM_COLUMNS}",
            assignments.join(", ")
        );
        let result: Result<Option<RoomRow>> = async {
            Ok(in_transaction!(self, |tx| {
                let row: Option<RoomRow> = bind_settings!(sqlx::query_as(&sql).bind(id.0), s)
                    .fetch_optional(&mut *tx)
                    .await?;
                if row.is_some() {
                    sqlx::query("DELETE FROM extensions WHERE room_id = $1")
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await?;
                    if let Some(extension) = &s.extension {
                        sqlx::query("INSERT INTO extensions (extension, room_id) VALUES ($1, $2)")
                            .bind(extension)
                            .bind(id.0)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                row
            }))
        }
        .await;
        match result {
            Ok(Some(row)) => row.try_into(),
            Ok(None) => Err(StoreError::NotFound { what: "room" }),
            Err(e) if is_unique_violation(&e) => {
                let extension = s.extension.as_deref().unwrap_or_default();
                Err(self.extension_conflict(extension).await)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes a room. Its recordings stay (with the room name) and lose the
    /// link. `Conflict { what: "destination" }` while a public number still
    /// routes to it.
    pub async fn delete_room(&self, id: RoomId) -> Result<()> {
        let target = crate::numbers::Destination::Room(id);
        in_transaction!(self, |tx| {
            let deleted = sqlx::query("DELETE FROM rooms WHERE id = $1")
                .bind(id.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                return Err(StoreError::NotFound { what: "room" });
            }
            // After the delete on purpose: see `Store::delete_line`.
            let routed: Vec<String> = sqlx::query_scalar(
                "SELECT number FROM numbers WHERE destination_kind = $1 AND destination_id = $2 \
                 ORDER BY number",
            )
            .bind(target.kind())
            .bind(target.id_text())
            .fetch_all(&mut *tx)
            .await?;
            if !routed.is_empty() {
                return Err(crate::numbers::still_routed("room", &routed));
            }
        });
        Ok(())
    }

    /// The room with this id, or `NotFound`.
    pub async fn room(&self, id: RoomId) -> Result<Room> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = $1");
        let row: Option<RoomRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id.0).fetch_optional(pool).await?
        });
        row.ok_or(StoreError::NotFound { what: "room" })?.try_into()
    }

    /// The room with this extension, if any.
    pub async fn room_by_extension(&self, extension: &str) -> Result<Option<Room>> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE extension = $1");
        let row: Option<RoomRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(extension)
                .fetch_optional(pool)
                .await?
        });
        row.map(Room::try_from).transpose()
    }

    /// Every room, by name then id.
    pub async fn rooms(&self) -> Result<Vec<Room>> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms ORDER BY name, id");
        let rows: Vec<RoomRow> =
            on_pool!(self, |pool| { sqlx::query_as(&sql).fetch_all(pool).await? });
        rows.into_iter().map(Room::try_from).collect()
    }

    /// Sets (or with `None` clears) the hash of a room's follow or control
    /// token. The old URL stops resolving at once: [`Store::room_by_token`]
    /// only finds the current hash. Generating the token and hashing it is the
    /// web layer's job; only the hash is stored.
    pub async fn set_room_token(
        &self,
        id: RoomId,
        token: RoomToken,
        hash: Option<&str>,
    ) -> Result<()> {
        let sql = format!("UPDATE rooms SET {} = $2 WHERE id = $1", token.column());
        let result: Result<u64> = async {
            Ok(on_pool!(self, |pool| {
                sqlx::query(&sql)
                    .bind(id.0)
                    .bind(hash)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }))
        }
        .await;
        match result {
            Ok(0) => Err(StoreError::NotFound { what: "room" }),
            Ok(_) => Ok(()),
            // 128-bit random tokens do not collide; a clash means the caller
            // stored the same hash twice.
            Err(e) if is_unique_violation(&e) => Err(StoreError::conflict(
                token.column(),
                "this token hash is already used by another room",
            )),
            Err(e) => Err(e),
        }
    }

    /// The room whose follow or control token hashes to `hash`, if any.
    pub async fn room_by_token(&self, token: RoomToken, hash: &str) -> Result<Option<Room>> {
        let sql = format!(
            "SELECT {ROOM_COLUMNS} FROM rooms WHERE {} = $1",
            token.column()
        );
        let row: Option<RoomRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(hash).fetch_optional(pool).await?
        });
        row.map(Room::try_from).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(s: &RoomSettings) -> (&'static str, String) {
        match s.validate() {
            Err(StoreError::Invalid { field, message }) => (field, message),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn defaults_follow_the_spec() {
        let s = RoomSettings::new("Weekly").validated().unwrap();
        assert_eq!(s.max_participants, 25);
        assert_eq!(s.language, Language::En);
        assert!(s.allow_anonymous);
        assert!(!s.wait_for_host && !s.mute_on_entry && !s.recording_enabled);
    }

    #[test]
    fn json_defaults_match_new() {
        let s: RoomSettings = serde_json::from_str(r#"{"name":"x"}"#).unwrap();
        assert_eq!(s, RoomSettings::new("x"));
        let s: RoomSettings =
            serde_json::from_str(r#"{"name":"x","language":"fr","access_pin":"0"}"#).unwrap();
        assert_eq!(s.language, Language::Fr);
        assert_eq!(s.validated().unwrap().access_pin, None);
    }

    #[test]
    fn pins_are_normalised() {
        let mut s = RoomSettings::new("r");
        s.access_pin = Some("0".into());
        s.host_pin = Some(" ".into());
        let v = s.validated().unwrap();
        assert_eq!((v.access_pin, v.host_pin), (None, None));
    }

    #[test]
    fn bad_pins_name_their_field() {
        let mut s = RoomSettings::new("r");
        s.access_pin = Some("12 34".into());
        assert_eq!(
            invalid(&s),
            ("access_pin", "must contain digits only (found ' ')".into())
        );
        let mut s = RoomSettings::new("r");
        s.host_pin = Some("123456789012345678901".into());
        assert_eq!(
            invalid(&s),
            ("host_pin", "must have at most 20 digits (has 21)".into())
        );
    }

    #[test]
    fn max_participants_range() {
        for (n, ok) in [
            (1, false),
            (2, true),
            (1000, true),
            (1001, false),
            (0, false),
        ] {
            let mut s = RoomSettings::new("r");
            s.max_participants = n;
            if ok {
                assert!(s.validate().is_ok(), "{n}");
            } else {
                assert_eq!(
                    invalid(&s),
                    (
                        "max_participants",
                        format!("must be from 2 to 1000 (got {n})")
                    )
                );
            }
        }
    }

    #[test]
    fn unusable_combinations_are_refused() {
        let mut s = RoomSettings::new("r");
        s.access_pin = Some("1234".into());
        s.host_pin = Some("1234".into());
        assert_eq!(invalid(&s).0, "host_pin");

        let mut s = RoomSettings::new("r");
        s.wait_for_host = true;
        assert_eq!(
            invalid(&s),
            (
                "wait_for_host",
                "needs a host PIN: without one nobody can join as host and everyone would wait"
                    .into()
            )
        );

        let mut s = RoomSettings::new("r");
        s.recording_autostart = true;
        assert_eq!(
            invalid(&s),
            (
                "recording_autostart",
                "needs recording to be enabled".into()
            )
        );
    }

    #[test]
    fn other_fields() {
        let mut s = RoomSettings::new("r");
        s.extension = Some("8a".into());
        assert_eq!(invalid(&s).0, "extension");
        let mut s = RoomSettings::new("r");
        s.report_email = Some("nobody".into());
        assert_eq!(
            invalid(&s),
            ("report_email", "must look like name@example.org".into())
        );
        let mut s = RoomSettings::new("r");
        s.moh_upload = Some("../x.wav".into());
        assert_eq!(invalid(&s).0, "moh_upload");
        let mut s = RoomSettings::new("  ");
        s.extension = Some("800".into());
        assert_eq!(invalid(&s), ("name", "is required".into()));
        // Blank optional text means "not set", not an error.
        let mut s = RoomSettings::new("r");
        s.extension = Some(" ".into());
        s.report_email = Some("".into());
        let v = s.validated().unwrap();
        assert_eq!((v.extension, v.report_email), (None, None));
    }
}
