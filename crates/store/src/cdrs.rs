//! Call detail records (SPEC P14): one row per finished call, written by the
//! call layer when the call ends and listed newest first by the panel and API.
//! [`Cdr`] is a stored row, [`NewCdr`] what the call layer hands in,
//! [`Disposition`] how the call ended.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::ids::CdrId;
use crate::store::{Store, in_transaction, on_pool};

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Answered, then hung up by either side.
    Answered,
    /// Rang out or timed out unanswered.
    NoAnswer,
    /// Callee busy (486/600).
    Busy,
    /// Callee declined (603) or policy refused (403, DND, anonymous).
    Rejected,
    /// Caller hung up before an answer (CANCEL).
    Cancelled,
    /// Routing or network failure (404, 408, 5xx…).
    Failed,
}

impl Disposition {
    /// The snake_case name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::NoAnswer => "no_answer",
            Disposition::Busy => "busy",
            Disposition::Rejected => "rejected",
            Disposition::Cancelled => "cancelled",
            Disposition::Failed => "failed",
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Disposition {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "answered" => Disposition::Answered,
            "no_answer" => Disposition::NoAnswer,
            "busy" => Disposition::Busy,
            "rejected" => Disposition::Rejected,
            "cancelled" => Disposition::Cancelled,
            "failed" => Disposition::Failed,
            _ => {
                return Err(StoreError::invalid(
                    "disposition",
                    format!("{s:?} is not a known disposition"),
                ));
            }
        })
    }
}

/// What the call layer knows when a call ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCdr {
    /// SIP Call-ID of the inbound leg.
    pub call_id: String,
    /// From URI as received.
    pub from_uri: String,
    /// Request/To URI as received.
    pub to_uri: String,
    /// Caller number or extension ("" when withheld).
    pub caller: String,
    /// Dialled number or extension.
    pub callee: String,
    /// What the call reached: "line", "room", "trunk", "none"…
    pub destination_kind: String,
    /// INVITE received, Unix ms.
    pub started_at: i64,
    /// 200 OK, Unix ms, if answered.
    pub answered_at: Option<i64>,
    /// Hang-up, Unix ms.
    pub ended_at: i64,
    /// How it ended.
    pub disposition: Disposition,
}

/// A stored call record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cdr {
    /// Row id.
    pub id: CdrId,
    /// The record as handed in.
    #[serde(flatten)]
    pub call: NewCdr,
    /// Talk time: `ended_at - answered_at`, 0 if unanswered.
    pub duration_ms: i64,
}

#[derive(sqlx::FromRow)]
struct CdrRow {
    id: i64,
    call_id: String,
    from_uri: String,
    to_uri: String,
    caller: String,
    callee: String,
    destination_kind: String,
    started_at: i64,
    answered_at: Option<i64>,
    ended_at: i64,
    disposition: String,
    duration_ms: i64,
}

impl TryFrom<CdrRow> for Cdr {
    type Error = StoreError;
    fn try_from(r: CdrRow) -> Result<Cdr> {
        Ok(Cdr {
            id: CdrId(r.id),
            call: NewCdr {
                disposition: r
                    .disposition
                    .parse()
                    .map_err(|_| StoreError::corrupt("disposition", &r.disposition))?,
                call_id: r.call_id,
                from_uri: r.from_uri,
                to_uri: r.to_uri,
                caller: r.caller,
                callee: r.callee,
                destination_kind: r.destination_kind,
                started_at: r.started_at,
                answered_at: r.answered_at,
                ended_at: r.ended_at,
            },
            duration_ms: r.duration_ms,
        })
    }
}

/// The insert shared by the one-record and the batched writes.
const INSERT_CDR: &str = "INSERT INTO cdrs (call_id, from_uri, to_uri, caller, callee, \
     destination_kind, started_at, answered_at, ended_at, disposition, duration_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// Binds a record to [`INSERT_CDR`]'s parameters, for `query` and
/// `query_scalar` alike, on either backend.
macro_rules! bind_cdr {
    ($query:expr, $cdr:expr, $duration_ms:expr) => {
        $query
            .bind(&$cdr.call_id)
            .bind(&$cdr.from_uri)
            .bind(&$cdr.to_uri)
            .bind(&$cdr.caller)
            .bind(&$cdr.callee)
            .bind(&$cdr.destination_kind)
            .bind($cdr.started_at)
            .bind($cdr.answered_at)
            .bind($cdr.ended_at)
            .bind($cdr.disposition.as_str())
            .bind($duration_ms)
    };
}

/// A record's times must be in order: started, answered (if it was), ended.
fn check_times(cdr: &NewCdr) -> Result<()> {
    if cdr.ended_at < cdr.started_at {
        return Err(StoreError::invalid(
            "ended_at",
            "must not be before started_at",
        ));
    }
    if let Some(answered) = cdr.answered_at
        && !(cdr.started_at..=cdr.ended_at).contains(&answered)
    {
        return Err(StoreError::invalid(
            "answered_at",
            "must be between started_at and ended_at",
        ));
    }
    Ok(())
}

impl Store {
    /// Appends a call record. `Invalid` if the times are out of order.
    pub async fn insert_cdr(&self, cdr: &NewCdr) -> Result<Cdr> {
        check_times(cdr)?;
        let duration_ms = cdr.answered_at.map_or(0, |a| cdr.ended_at - a);
        let id: i64 = on_pool!(self, |pool| {
            bind_cdr!(
                sqlx::query_scalar(&format!("{INSERT_CDR} RETURNING id")),
                cdr,
                duration_ms
            )
            .fetch_one(pool)
            .await?
        });
        Ok(Cdr {
            id: CdrId(id),
            call: cdr.clone(),
            duration_ms,
        })
    }

    /// Appends many call records in one transaction (one commit, one fsync):
    /// what a busy PBX does with the records of the calls that ended since
    /// its last write. Records with times out of order are skipped and
    /// counted in the returned `(inserted, skipped)`.
    pub async fn insert_cdrs(&self, cdrs: &[NewCdr]) -> Result<(usize, usize)> {
        let valid: Vec<&NewCdr> = cdrs.iter().filter(|c| check_times(c).is_ok()).collect();
        if valid.is_empty() {
            return Ok((0, cdrs.len()));
        }
        in_transaction!(self, |tx| {
            for cdr in &valid {
                let duration_ms = cdr.answered_at.map_or(0, |a| cdr.ended_at - a);
                bind_cdr!(sqlx::query(INSERT_CDR), cdr, duration_ms)
                    .execute(&mut *tx)
                    .await?;
            }
        });
        Ok((valid.len(), cdrs.len() - valid.len()))
    }

    /// Call records, newest first, at most `limit`; pass the last id of a
    /// page as `before` to get the next page.
    pub async fn cdrs(&self, limit: u32, before: Option<CdrId>) -> Result<Vec<Cdr>> {
        let rows: Vec<CdrRow> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, call_id, from_uri, to_uri, caller, callee, destination_kind, \
                 started_at, answered_at, ended_at, disposition, duration_ms FROM cdrs \
                 WHERE id < $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(before.map_or(i64::MAX, |b| b.0))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Cdr::try_from).collect()
    }
}
