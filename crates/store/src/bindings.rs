//! Registrations (SPEC P1): the contacts each line's devices registered, kept
//! in the database so they survive a restart. [`Binding`] is one contact of
//! one line; the registrar writes it with [`crate::Store::upsert_binding`] on
//! every REGISTER. Expiry is a timestamp compared with the `now` the caller
//! passes in: the store never decides on its own that a binding is gone.

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError, is_foreign_key_violation};
use crate::fields::Transport;
use crate::ids::LineId;
use crate::store::{Store, on_pool};

/// One registered contact of a line. Primary key: (`line_id`, `contact`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The registered line.
    pub line_id: LineId,
    /// The Contact URI as registered.
    pub contact: String,
    /// Where the REGISTER came from (`ip:port`), for NAT traversal.
    pub received: String,
    /// Transport the REGISTER came over.
    pub transport: Transport,
    /// When the binding lapses, Unix ms.
    pub expires_at: i64,
    /// Call-ID of the REGISTER, to order refreshes (RFC 3261 §10.3).
    pub call_id: String,
    /// CSeq number of the REGISTER.
    pub cseq: u32,
    /// The device's User-Agent header, may be empty.
    pub user_agent: String,
    /// The `+sip.instance` parameter (RFC 5626), if sent.
    pub instance: Option<String>,
}

#[derive(sqlx::FromRow)]
struct BindingRow {
    line_id: i64,
    contact: String,
    received: String,
    transport: String,
    expires_at: i64,
    call_id: String,
    cseq: i64,
    user_agent: String,
    instance: Option<String>,
}

impl TryFrom<BindingRow> for Binding {
    type Error = StoreError;
    fn try_from(r: BindingRow) -> Result<Binding> {
        Ok(Binding {
            line_id: LineId(r.line_id),
            transport: r
                .transport
                .parse()
                .map_err(|_| StoreError::corrupt("transport", &r.transport))?,
            cseq: u32::try_from(r.cseq)
                .map_err(|_| StoreError::corrupt("cseq", &r.cseq.to_string()))?,
            contact: r.contact,
            received: r.received,
            expires_at: r.expires_at,
            call_id: r.call_id,
            user_agent: r.user_agent,
            instance: r.instance,
        })
    }
}

const SELECT_BINDING: &str = "SELECT line_id, contact, received, transport, expires_at, call_id, \
                              cseq, user_agent, instance FROM bindings";

impl Store {
    /// Inserts or refreshes a binding (same line and contact). `NotFound`
    /// if the line does not exist (it may have been deleted mid-REGISTER).
    pub async fn upsert_binding(&self, binding: &Binding) -> Result<()> {
        let result: Result<u64> = async {
            Ok(on_pool!(self, |pool| {
                sqlx::query(
                    "INSERT INTO bindings (line_id, contact, received, transport, expires_at, \
                     call_id, cseq, user_agent, instance) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (line_id, contact) DO UPDATE SET \
                     received = excluded.received, transport = excluded.transport, \
                     expires_at = excluded.expires_at, call_id = excluded.call_id, \
                     cseq = excluded.cseq, user_agent = excluded.user_agent, \
                     instance = excluded.instance",
                )
                .bind(binding.line_id.0)
                .bind(&binding.contact)
                .bind(&binding.received)
                .bind(binding.transport.as_str())
                .bind(binding.expires_at)
                .bind(&binding.call_id)
                .bind(i64::from(binding.cseq))
                .bind(&binding.user_agent)
                .bind(&binding.instance)
                .execute(pool)
                .await?
                .rows_affected()
            }))
        }
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotFound { what: "line" }),
            Err(e) => Err(e),
        }
    }

    /// Removes one binding (un-REGISTER of a contact). Returns whether it
    /// existed.
    pub async fn delete_binding(&self, line: LineId, contact: &str) -> Result<bool> {
        let deleted = on_pool!(self, |pool| {
            sqlx::query("DELETE FROM bindings WHERE line_id = $1 AND contact = $2")
                .bind(line.0)
                .bind(contact)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted > 0)
    }

    /// Removes every binding of a line (`Contact: *`). Returns how many.
    pub async fn delete_bindings_of_line(&self, line: LineId) -> Result<u64> {
        Ok(on_pool!(self, |pool| {
            sqlx::query("DELETE FROM bindings WHERE line_id = $1")
                .bind(line.0)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// The bindings of one line still valid at `now` (Unix ms), by contact.
    pub async fn bindings_of_line(&self, line: LineId, now: i64) -> Result<Vec<Binding>> {
        let sql =
            format!("{SELECT_BINDING} WHERE line_id = $1 AND expires_at > $2 ORDER BY contact");
        let rows: Vec<BindingRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(line.0)
                .bind(now)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(Binding::try_from).collect()
    }

    /// Every binding still valid at `now` (Unix ms): what the registrar
    /// loads at start-up.
    pub async fn all_bindings(&self, now: i64) -> Result<Vec<Binding>> {
        let sql = format!("{SELECT_BINDING} WHERE expires_at > $1 ORDER BY line_id, contact");
        let rows: Vec<BindingRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(now).fetch_all(pool).await?
        });
        rows.into_iter().map(Binding::try_from).collect()
    }

    /// Removes bindings that lapsed at or before `now`. Returns how many.
    pub async fn delete_expired_bindings(&self, now: i64) -> Result<u64> {
        Ok(on_pool!(self, |pool| {
            sqlx::query("DELETE FROM bindings WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
