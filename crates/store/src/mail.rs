//! The mail outbox (SPEC C15): messages waiting to be sent, kept in the
//! database so a failed or interrupted send is retried after a restart and
//! never lost. [`OutboxMail`] is a stored message, [`NewMail`] what the
//! report writer hands in, [`Backoff`] the retry policy. Sending (SMTP or the
//! outbox folder) is another crate's job; this module only queues.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::fields;
use crate::ids::MailId;
use crate::store::{Store, in_transaction, on_pool};

/// A queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMail {
    /// Row id.
    pub id: MailId,
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// Failed sends so far.
    pub attempts: u32,
    /// Not to be tried before this, Unix ms.
    pub next_attempt_at: i64,
    /// What went wrong last time.
    pub last_error: Option<String>,
    /// Queued at, Unix ms.
    pub created_at: i64,
    /// Sent at, Unix ms; `None` while pending.
    pub sent_at: Option<i64>,
}

/// A message to queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMail {
    /// Recipient address (checked loosely).
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// Exponential retry delay: `initial`, doubling per failed attempt, capped
/// at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Longest delay between attempts.
    pub max: Duration,
}

impl Default for Backoff {
    /// 30 s, then 1, 2, 4 … minutes, never more than an hour apart.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(3600),
        }
    }
}

impl Backoff {
    /// The delay after the `attempts`-th failure (1 for the first).
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

#[derive(sqlx::FromRow)]
struct MailRow {
    id: i64,
    recipient: String,
    subject: String,
    body: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    created_at: i64,
    sent_at: Option<i64>,
}

impl From<MailRow> for OutboxMail {
    fn from(r: MailRow) -> OutboxMail {
        OutboxMail {
            id: MailId(r.id),
            to: r.recipient,
            subject: r.subject,
            body: r.body,
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            created_at: r.created_at,
            sent_at: r.sent_at,
        }
    }
}

const SELECT_MAIL: &str = "SELECT id, recipient, subject, body, attempts, next_attempt_at, \
                           last_error, created_at, sent_at FROM mail_outbox";

impl Store {
    /// Queues a message, due at once (`now`, Unix ms).
    pub async fn enqueue_mail(&self, mail: &NewMail, now: i64) -> Result<OutboxMail> {
        let to = fields::email("to", &mail.to)?;
        if mail.subject.contains(['\r', '\n']) {
            return Err(StoreError::invalid("subject", "must be a single line"));
        }
        let id: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO mail_outbox (recipient, subject, body, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, $4, $4) RETURNING id",
            )
            .bind(&to)
            .bind(&mail.subject)
            .bind(&mail.body)
            .bind(now)
            .fetch_one(pool)
            .await?
        });
        Ok(OutboxMail {
            id: MailId(id),
            to,
            subject: mail.subject.clone(),
            body: mail.body.clone(),
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            sent_at: None,
        })
    }

    /// Unsent messages due at `now`, oldest due first, at most `limit`.
    pub async fn due_mail(&self, now: i64, limit: u32) -> Result<Vec<OutboxMail>> {
        let sql = format!(
            "{SELECT_MAIL} WHERE sent_at IS NULL AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2"
        );
        let rows: Vec<MailRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(OutboxMail::from).collect())
    }

    /// The message with this id, sent or not, or `NotFound`.
    pub async fn mail(&self, id: MailId) -> Result<OutboxMail> {
        let sql = format!("{SELECT_MAIL} WHERE id = $1");
        let row: Option<MailRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id.0).fetch_optional(pool).await?
        });
        row.map(OutboxMail::from)
            .ok_or(StoreError::NotFound { what: "mail" })
    }

    /// Marks a message sent at `now`; it is never due again.
    pub async fn mark_mail_sent(&self, id: MailId, now: i64) -> Result<()> {
        let updated = on_pool!(self, |pool| {
            sqlx::query("UPDATE mail_outbox SET sent_at = $2, last_error = NULL WHERE id = $1")
                .bind(id.0)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if updated == 0 {
            return Err(StoreError::NotFound { what: "mail" });
        }
        Ok(())
    }

    /// Records a failed send at `now`: counts the attempt, keeps the error,
    /// and schedules the next try after `backoff`. Returns when that is.
    pub async fn mark_mail_failed(
        &self,
        id: MailId,
        error: &str,
        now: i64,
        backoff: &Backoff,
    ) -> Result<i64> {
        in_transaction!(self, |tx| {
            let attempts: Option<i64> = sqlx::query_scalar(
                "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2 \
                 WHERE id = $1 RETURNING attempts",
            )
            .bind(id.0)
            .bind(error)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(attempts) = attempts else {
                return Err(StoreError::NotFound { what: "mail" });
            };
            let delay = backoff.delay(u32::try_from(attempts).unwrap_or(u32::MAX));
            let next = now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
            sqlx::query("UPDATE mail_outbox SET next_attempt_at = $2 WHERE id = $1")
                .bind(id.0)
                .bind(next)
                .execute(&mut *tx)
                .await?;
            Ok(next)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff::default();
        assert_eq!(b.delay(1), Duration::from_secs(30));
        assert_eq!(b.delay(2), Duration::from_secs(60));
        assert_eq!(b.delay(4), Duration::from_secs(240));
        assert_eq!(b.delay(8), Duration::from_secs(3600));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(3600));
        assert_eq!(b.delay(0), Duration::from_secs(30));
    }
}
