//! Server-wide key/value settings that the panel can change at run time (for
//! example the generated admin password's "shown once" flag). Values are
//! opaque text; their meaning belongs to whoever reads them.

use crate::error::{Result, StoreError};
use crate::store::{Store, on_pool};

impl Store {
    /// The value of `key`, if set.
    pub async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Sets `key` to `value`, replacing any previous value.
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        if key.is_empty() {
            return Err(StoreError::invalid("key", "is required"));
        }
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Removes `key`. Returns whether it was set.
    pub async fn delete_setting(&self, key: &str) -> Result<bool> {
        let deleted = on_pool!(self, |pool| {
            sqlx::query("DELETE FROM settings WHERE key = $1")
                .bind(key)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted > 0)
    }
}
