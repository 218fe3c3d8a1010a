//! Lines (SPEC P1): SIP accounts with an extension, a display name and a
//! password. [`Line`] is a stored row, [`LineFields`] what an admin sets.
//! Lines share one extension namespace with rooms (see [`crate::Store::extension_owner`]).
//! Registrations of a line live in [`crate::bindings`].

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError, is_unique_violation};
use crate::fields;
use crate::ids::LineId;
use crate::store::{Store, in_transaction, now_ms, on_pool};

/// A line as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Row id.
    pub id: LineId,
    /// Internal extension, digits only, unique across lines and rooms.
    pub extension: String,
    /// Name shown to called parties.
    pub display_name: String,
    /// SIP password, kept in clear: digest auth and provisioning need it.
    pub password: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

/// What an admin sets on a line, for create and update alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineFields {
    /// 2–15 digits.
    pub extension: String,
    /// 1–64 characters.
    pub display_name: String,
    /// 1–128 printable ASCII characters.
    pub password: String,
}

impl LineFields {
    /// Checks every field and returns them normalised (trimmed), or the first
    /// problem as [`StoreError::Invalid`].
    pub fn validated(&self) -> Result<LineFields> {
        Ok(LineFields {
            extension: fields::extension("extension", &self.extension)?,
            display_name: fields::label("display_name", &self.display_name, 1, 64)?,
            password: fields::secret("password", &self.password)?,
        })
    }

    /// Checks every field; the same rules the store applies on write.
    pub fn validate(&self) -> Result<()> {
        self.validated().map(|_| ())
    }
}

#[derive(sqlx::FromRow)]
struct LineRow {
    id: i64,
    extension: String,
    display_name: String,
    password: String,
    created_at: i64,
}

impl From<LineRow> for Line {
    fn from(r: LineRow) -> Line {
        Line {
            id: LineId(r.id),
            extension: r.extension,
            display_name: r.display_name,
            password: r.password,
            created_at: r.created_at,
        }
    }
}

const SELECT_LINE: &str = "SELECT id, extension, display_name, password, created_at FROM lines";

impl Store {
    /// Creates a line. `Conflict { what: "extension" }` when a line or room
    /// already has that extension.
    pub async fn create_line(&self, fields: &LineFields) -> Result<Line> {
        let f = fields.validated()?;
        let created_at = now_ms();
        let result: Result<i64> = async {
            Ok(in_transaction!(self, |tx| {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO lines (extension, display_name, password, created_at) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(&f.extension)
                .bind(&f.display_name)
                .bind(&f.password)
                .bind(created_at)
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query("INSERT INTO extensions (extension, line_id) VALUES ($1, $2)")
                    .bind(&f.extension)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                id
            }))
        }
        .await;
        match result {
            Ok(id) => Ok(Line {
                id: LineId(id),
                extension: f.extension,
                display_name: f.display_name,
                password: f.password,
                created_at,
            }),
            Err(e) if is_unique_violation(&e) => Err(self.extension_conflict(&f.extension).await),
            Err(e) => Err(e),
        }
    }

    /// Replaces a line's fields. `NotFound` if it does not exist.
    pub async fn update_line(&self, id: LineId, fields: &LineFields) -> Result<Line> {
        let f = fields.validated()?;
        let result: Result<Option<i64>> = async {
            Ok(in_transaction!(self, |tx| {
                let created_at: Option<i64> = sqlx::query_scalar(
                    "UPDATE lines SET extension = $2, display_name = $3, password = $4 \
                     WHERE id = $1 RETURNING created_at",
                )
                .bind(id.0)
                .bind(&f.extension)
                .bind(&f.display_name)
                .bind(&f.password)
                .fetch_optional(&mut *tx)
                .await?;
                if created_at.is_some() {
                    sqlx::query("DELETE FROM extensions WHERE line_id = $1")
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("INSERT INTO extensions (extension, line_id) VALUES ($1, $2)")
                        .bind(&f.extension)
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await?;
                }
                created_at
            }))
        }
        .await;
        match result {
            Ok(Some(created_at)) => Ok(Line {
                id,
                extension: f.extension,
                display_name: f.display_name,
                password: f.password,
                created_at,
            }),
            Ok(None) => Err(StoreError::NotFound { what: "line" }),
            Err(e) if is_unique_violation(&e) => Err(self.extension_conflict(&f.extension).await),
            Err(e) => Err(e),
        }
    }

    /// Deletes a line and its registrations. `Conflict { what: "destination" }`
    /// while a public number still routes to it.
    pub async fn delete_line(&self, id: LineId) -> Result<()> {
        let target = crate::numbers::Destination::Line(id);
        in_transaction!(self, |tx| {
            let deleted = sqlx::query("DELETE FROM lines WHERE id = $1")
                .bind(id.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                return Err(StoreError::NotFound { what: "line" });
            }
            // Checked after the delete so a concurrent number insert that
            // locked the row first is seen here (see numbers.rs).
            let routed: Vec<String> = sqlx::query_scalar(
                "SELECT number FROM numbers WHERE destination_kind = $1 AND destination_id = $2 \
                 ORDER BY number",
            )
            .bind(target.kind())
            .bind(target.id_text())
            .fetch_all(&mut *tx)
            .await?;
            if !routed.is_empty() {
                return Err(crate::numbers::still_routed("line", &routed));
            }
        });
        Ok(())
    }

    /// The line with this id, or `NotFound`.
    pub async fn line(&self, id: LineId) -> Result<Line> {
        let sql = format!("{SELECT_LINE} WHERE id = $1");
        let row: Option<LineRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id.0).fetch_optional(pool).await?
        });
        row.map(Line::from)
            .ok_or(StoreError::NotFound { what: "line" })
    }

    /// The line with this extension, if any (the registrar's lookup).
    pub async fn line_by_extension(&self, extension: &str) -> Result<Option<Line>> {
        let sql = format!("{SELECT_LINE} WHERE extension = $1");
        let row: Option<LineRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(extension)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(Line::from))
    }

    /// Every line, by extension.
    pub async fn lines(&self) -> Result<Vec<Line>> {
        let sql = format!("{SELECT_LINE} ORDER BY extension");
        let rows: Vec<LineRow> =
            on_pool!(self, |pool| { sqlx::query_as(&sql).fetch_all(pool).await? });
        Ok(rows.into_iter().map(Line::from).collect())
    }
}
