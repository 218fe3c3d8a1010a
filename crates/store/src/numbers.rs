//! Public numbers, a.k.a. DIDs (SPEC P3): the number a carrier delivers on a
//! trunk and where its calls go. [`Number`] is a stored row, [`NumberFields`]
//! what an admin sets, [`Destination`] the target.
//!
//! The destination is stored as a kind and an id in text so that queues,
//! voicemail boxes and IVRs can be added as kinds without a migration. Since
//! no foreign key guards it, the store checks the target exists inside the
//! writing transaction, and refuses to delete a line or room a number still
//! routes to. The lookup is exact: turning `0033…` into `+33…` is the router's
//! job, not the store's.

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError, is_foreign_key_violation, is_unique_violation};
use crate::fields;
use crate::ids::{LineId, NumberId, RoomId, TrunkId};
use crate::store::{Backend, Store, in_transaction, now_ms, on_pool};

/// Where a public number's calls go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Destination {
    /// Ring a line.
    Line(LineId),
    /// Join a conference room.
    Room(RoomId),
}

impl Destination {
    /// The kind as stored in `destination_kind`.
    pub fn kind(self) -> &'static str {
        match self {
            Destination::Line(_) => "line",
            Destination::Room(_) => "room",
        }
    }

    pub(crate) fn id_text(self) -> String {
        match self {
            Destination::Line(id) => id.0.to_string(),
            Destination::Room(id) => id.0.to_string(),
        }
    }

    fn from_stored(kind: &str, id: &str) -> Result<Destination> {
        let id: i64 = id
            .parse()
            .map_err(|_| StoreError::corrupt("destination id", id))?;
        match kind {
            "line" => Ok(Destination::Line(LineId(id))),
            "room" => Ok(Destination::Room(RoomId(id))),
            other => Err(StoreError::corrupt("destination kind", other)),
        }
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind(), self.id_text())
    }
}

/// A public number as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Number {
    /// Row id.
    pub id: NumberId,
    /// The DID: digits with an optional leading `+`, unique.
    pub number: String,
    /// Where its calls go.
    pub destination: Destination,
    /// The trunk it arrives on, if it is tied to one.
    pub trunk_id: Option<TrunkId>,
    /// Free text for the admin.
    pub description: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

/// What an admin sets on a public number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberFields {
    /// Digits with an optional leading `+`, 1–20 digits.
    pub number: String,
    /// Must exist when written.
    pub destination: Destination,
    /// Must exist when written; cleared if the trunk is deleted.
    pub trunk_id: Option<TrunkId>,
    /// At most 200 characters; may be empty.
    #[serde(default)]
    pub description: String,
}

impl NumberFields {
    /// Checks every field and returns them normalised, or the first problem.
    /// Existence of the destination and trunk is checked by the store.
    pub fn validated(&self) -> Result<NumberFields> {
        Ok(NumberFields {
            number: fields::did("number", &self.number)?,
            destination: self.destination,
            trunk_id: self.trunk_id,
            description: fields::label("description", &self.description, 0, 200)?,
        })
    }

    /// Checks every field; the same rules the store applies on write.
    pub fn validate(&self) -> Result<()> {
        self.validated().map(|_| ())
    }
}

#[derive(sqlx::FromRow)]
struct NumberRow {
    id: i64,
    number: String,
    destination_kind: String,
    destination_id: String,
    trunk_id: Option<i64>,
    description: String,
    created_at: i64,
}

impl TryFrom<NumberRow> for Number {
    type Error = StoreError;
    fn try_from(r: NumberRow) -> Result<Number> {
        Ok(Number {
            id: NumberId(r.id),
            number: r.number,
            destination: Destination::from_stored(&r.destination_kind, &r.destination_id)?,
            trunk_id: r.trunk_id.map(TrunkId),
            description: r.description,
            created_at: r.created_at,
        })
    }
}

const SELECT_NUMBER: &str = "SELECT id, number, destination_kind, destination_id, trunk_id, \
                             description, created_at FROM numbers";

/// The `Conflict` for deleting a line or room that numbers still route to.
pub(crate) fn still_routed(what: &str, numbers: &[String]) -> StoreError {
    StoreError::conflict(
        "destination",
        format!(
            "this {what} is the destination of {} {}; route {} elsewhere first",
            if numbers.len() == 1 {
                "number"
            } else {
                "numbers"
            },
            numbers.join(", "),
            if numbers.len() == 1 { "it" } else { "them" },
        ),
    )
}

impl Store {
    /// SQL that checks the destination row exists. On PostgreSQL it also
    /// takes a share lock, so a concurrent delete of that line or room waits
    /// for us and then sees our number (and refuses); SQLite needs no lock
    /// because `BEGIN IMMEDIATE` already serialises writers.
    fn destination_check_sql(&self, destination: Destination) -> &'static str {
        match (destination, self.backend()) {
            (Destination::Line(_), Backend::Sqlite) => "SELECT id FROM lines WHERE id = $1",
            (Destination::Line(_), Backend::Postgres) => {
                "SELECT id FROM lines WHERE id = $1 FOR SHARE"
            }
            (Destination::Room(_), Backend::Sqlite) => "SELECT id FROM rooms WHERE id = $1",
            (Destination::Room(_), Backend::Postgres) => {
                "SELECT id FROM rooms WHERE id = $1 FOR SHARE"
            }
        }
    }

    fn map_number_error(&self, e: StoreError, f: &NumberFields) -> StoreError {
        if is_unique_violation(&e) {
            StoreError::conflict("number", format!("{} already exists", f.number))
        } else if is_foreign_key_violation(&e) {
            let trunk = f.trunk_id.map(|t| t.to_string()).unwrap_or_default();
            StoreError::invalid("trunk_id", format!("trunk {trunk} does not exist"))
        } else {
            e
        }
    }

    /// Creates a public number. `Conflict { what: "number" }` if it exists;
    /// `Invalid` if its destination or trunk does not.
    pub async fn create_number(&self, fields: &NumberFields) -> Result<Number> {
        let f = fields.validated()?;
        let created_at = now_ms();
        let check = self.destination_check_sql(f.destination);
        let dest_id = match f.destination {
            Destination::Line(id) => id.0,
            Destination::Room(id) => id.0,
        };
        let result: Result<i64> = async {
            Ok(in_transaction!(self, |tx| {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO numbers (number, destination_kind, destination_id, trunk_id, \
                     description, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(&f.number)
                .bind(f.destination.kind())
                .bind(f.destination.id_text())
                .bind(f.trunk_id.map(|t| t.0))
                .bind(&f.description)
                .bind(created_at)
                .fetch_one(&mut *tx)
                .await?;
                let exists: Option<i64> = sqlx::query_scalar(check)
                    .bind(dest_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if exists.is_none() {
                    return Err(missing_destination(f.destination));
                }
                id
            }))
        }
        .await;
        let id = result.map_err(|e| self.map_number_error(e, &f))?;
        Ok(Number {
            id: NumberId(id),
            number: f.number,
            destination: f.destination,
            trunk_id: f.trunk_id,
            description: f.description,
            created_at,
        })
    }

    /// Replaces a public number's fields. `NotFound` if it does not exist.
    pub async fn update_number(&self, id: NumberId, fields: &NumberFields) -> Result<Number> {
        let f = fields.validated()?;
        let check = self.destination_check_sql(f.destination);
        let dest_id = match f.destination {
            Destination::Line(id) => id.0,
            Destination::Room(id) => id.0,
        };
        let result: Result<i64> = async {
            Ok(in_transaction!(self, |tx| {
                let created_at: Option<i64> = sqlx::query_scalar(
                    "UPDATE numbers SET number = $2, destination_kind = $3, destination_id = $4, \
                     trunk_id = $5, description = $6 WHERE id = $1 RETURNING created_at",
                )
                .bind(id.0)
                .bind(&f.number)
                .bind(f.destination.kind())
                .bind(f.destination.id_text())
                .bind(f.trunk_id.map(|t| t.0))
                .bind(&f.description)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(created_at) = created_at else {
                    return Err(StoreError::NotFound { what: "number" });
                };
                let exists: Option<i64> = sqlx::query_scalar(check)
                    .bind(dest_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if exists.is_none() {
                    return Err(missing_destination(f.destination));
                }
                created_at
            }))
        }
        .await;
        let created_at = result.map_err(|e| self.map_number_error(e, &f))?;
        Ok(Number {
            id,
            number: f.number,
            destination: f.destination,
            trunk_id: f.trunk_id,
            description: f.description,
            created_at,
        })
    }

    /// Deletes a public number. `NotFound` if it does not exist.
    pub async fn delete_number(&self, id: NumberId) -> Result<()> {
        let deleted = on_pool!(self, |pool| {
            sqlx::query("DELETE FROM numbers WHERE id = $1")
                .bind(id.0)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if deleted == 0 {
            return Err(StoreError::NotFound { what: "number" });
        }
        Ok(())
    }

    /// The number with this id, or `NotFound`.
    pub async fn number(&self, id: NumberId) -> Result<Number> {
        let sql = format!("{SELECT_NUMBER} WHERE id = $1");
        let row: Option<NumberRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id.0).fetch_optional(pool).await?
        });
        row.ok_or(StoreError::NotFound { what: "number" })?
            .try_into()
    }

    /// The number stored exactly as `did`, if any (the trunk router's lookup).
    pub async fn number_by_did(&self, did: &str) -> Result<Option<Number>> {
        let sql = format!("{SELECT_NUMBER} WHERE number = $1");
        let row: Option<NumberRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(did).fetch_optional(pool).await?
        });
        row.map(Number::try_from).transpose()
    }

    /// Every public number, by number.
    pub async fn numbers(&self) -> Result<Vec<Number>> {
        let sql = format!("{SELECT_NUMBER} ORDER BY number");
        let rows: Vec<NumberRow> =
            on_pool!(self, |pool| { sqlx::query_as(&sql).fetch_all(pool).await? });
        rows.into_iter().map(Number::try_from).collect()
    }

    /// The public numbers routed to `destination` (e.g. the DIDs of a room).
    pub async fn numbers_to(&self, destination: Destination) -> Result<Vec<Number>> {
        let sql = format!(
            "{SELECT_NUMBER} WHERE destination_kind = $1 AND destination_id = $2 ORDER BY number"
        );
        let rows: Vec<NumberRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(destination.kind())
                .bind(destination.id_text())
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(Number::try_from).collect()
    }
}

fn missing_destination(destination: Destination) -> StoreError {
    StoreError::invalid("destination", format!("{destination} does not exist"))
}
