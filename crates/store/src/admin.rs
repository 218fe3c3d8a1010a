//! Web-panel access (issue 5): administrators, their login sessions, and API
//! tokens for scripts. [`AdminUser`], [`Session`] and [`ApiToken`] are stored
//! rows. Only hashes are stored: the web layer hashes passwords (argon2) and
//! session ids/tokens (e.g. SHA-256) before calling in, and compares them;
//! this module never sees a secret in clear.

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError, is_foreign_key_violation, is_unique_violation};
use crate::fields;
use crate::ids::{AdminUserId, ApiTokenId};
use crate::store::{Store, now_ms, on_pool};

/// An administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdminUser {
    /// Row id.
    pub id: AdminUserId,
    /// Login name, unique.
    pub username: String,
    /// PHC string from argon2.
    #[serde(skip_serializing)]
    pub password_hash: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

/// A logged-in browser session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Hash of the session cookie's value (the key).
    pub id_hash: String,
    /// Who is logged in.
    pub user_id: AdminUserId,
    /// The session's CSRF token (compared with form fields).
    pub csrf: String,
    /// When the session ends, Unix ms.
    pub expires_at: i64,
}

/// An API token for scripts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    /// Row id.
    pub id: ApiTokenId,
    /// What the admin called it.
    pub name: String,
    /// Hash of the token, unique.
    #[serde(skip_serializing)]
    pub token_hash: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Last successful use, Unix ms.
    pub last_used_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct AdminUserRow {
    id: i64,
    username: String,
    password_hash: String,
    created_at: i64,
}

impl From<AdminUserRow> for AdminUser {
    fn from(r: AdminUserRow) -> AdminUser {
        AdminUser {
            id: AdminUserId(r.id),
            username: r.username,
            password_hash: r.password_hash,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id_hash: String,
    user_id: i64,
    csrf: String,
    expires_at: i64,
}

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Session {
        Session {
            id_hash: r.id_hash,
            user_id: AdminUserId(r.user_id),
            csrf: r.csrf,
            expires_at: r.expires_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ApiTokenRow {
    id: i64,
    name: String,
    token_hash: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl From<ApiTokenRow> for ApiToken {
    fn from(r: ApiTokenRow) -> ApiToken {
        ApiToken {
            id: ApiTokenId(r.id),
            name: r.name,
            token_hash: r.token_hash,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

const SELECT_USER: &str = "SELECT id, username, password_hash, created_at FROM admin_users";
const SELECT_TOKEN: &str = "SELECT id, name, token_hash, created_at, last_used_at FROM api_tokens";

fn required(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(StoreError::invalid(field, "is required"));
    }
    Ok(())
}

impl Store {
    /// Creates an administrator. `Conflict { what: "username" }` if taken.
    pub async fn create_admin_user(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<AdminUser> {
        let username = fields::label("username", username, 1, 64)?;
        required("password_hash", password_hash)?;
        let created_at = now_ms();
        let result: Result<i64> = async {
            Ok(on_pool!(self, |pool| {
                sqlx::query_scalar(
                    "INSERT INTO admin_users (username, password_hash, created_at) \
                     VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(&username)
                .bind(password_hash)
                .bind(created_at)
                .fetch_one(pool)
                .await?
            }))
        }
        .await;
        let id = match result {
            Ok(id) => id,
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::conflict(
                    "username",
                    format!("{username:?} is already taken"),
                ));
            }
            Err(e) => return Err(e),
        };
        Ok(AdminUser {
            id: AdminUserId(id),
            username,
            password_hash: password_hash.to_owned(),
            created_at,
        })
    }

    /// The administrator with this id, or `NotFound`.
    pub async fn admin_user(&self, id: AdminUserId) -> Result<AdminUser> {
        let sql = format!("{SELECT_USER} WHERE id = $1");
        let row: Option<AdminUserRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id.0).fetch_optional(pool).await?
        });
        row.map(AdminUser::from)
            .ok_or(StoreError::NotFound { what: "admin user" })
    }

    /// The administrator with this login name, if any (the login lookup).
    pub async fn admin_user_by_username(&self, username: &str) -> Result<Option<AdminUser>> {
        let sql = format!("{SELECT_USER} WHERE username = $1");
        let row: Option<AdminUserRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(username)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(AdminUser::from))
    }

    /// Every administrator, by username.
    pub async fn admin_users(&self) -> Result<Vec<AdminUser>> {
        let sql = format!("{SELECT_USER} ORDER BY username");
        let rows: Vec<AdminUserRow> =
            on_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await?);
        Ok(rows.into_iter().map(AdminUser::from).collect())
    }

    /// Replaces an administrator's password hash. Existing sessions stay;
    /// call [`Store::delete_sessions_of_user`] to log them out too.
    pub async fn set_admin_password_hash(
        &self,
        id: AdminUserId,
        password_hash: &str,
    ) -> Result<()> {
        required("password_hash", password_hash)?;
        let updated = on_pool!(self, |pool| {
            sqlx::query("UPDATE admin_users SET password_hash = $2 WHERE id = $1")
                .bind(id.0)
                .bind(password_hash)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if updated == 0 {
            return Err(StoreError::NotFound { what: "admin user" });
        }
        Ok(())
    }

    /// Deletes an administrator and their sessions.
    pub async fn delete_admin_user(&self, id: AdminUserId) -> Result<()> {
        let deleted = on_pool!(self, |pool| {
            sqlx::query("DELETE FROM admin_users WHERE id = $1")
                .bind(id.0)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if deleted == 0 {
            return Err(StoreError::NotFound { what: "admin user" });
        }
        Ok(())
    }

    /// Stores a new session. `NotFound` if the user does not exist.
    pub async fn create_session(&self, session: &Session) -> Result<()> {
        required("id_hash", &session.id_hash)?;
        required("csrf", &session.csrf)?;
        let result: Result<u64> = async {
            Ok(on_pool!(self, |pool| {
                sqlx::query(
                    "INSERT INTO sessions (id_hash, user_id, csrf, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&session.id_hash)
                .bind(session.user_id.0)
                .bind(&session.csrf)
                .bind(session.expires_at)
                .execute(pool)
                .await?
                .rows_affected()
            }))
        }
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_foreign_key_violation(&e) => {
                Err(StoreError::NotFound { what: "admin user" })
            }
            Err(e) if is_unique_violation(&e) => Err(StoreError::conflict(
                "id_hash",
                "a session with this id already exists",
            )),
            Err(e) => Err(e),
        }
    }

    /// The session with this id hash if it is still valid at `now` (Unix ms).
    pub async fn session(&self, id_hash: &str, now: i64) -> Result<Option<Session>> {
        let row: Option<SessionRow> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id_hash, user_id, csrf, expires_at FROM sessions \
                 WHERE id_hash = $1 AND expires_at > $2",
            )
            .bind(id_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(Session::from))
    }

    /// Moves a session's expiry (sliding sessions). Returns whether it existed.
    pub async fn extend_session(&self, id_hash: &str, expires_at: i64) -> Result<bool> {
        let updated = on_pool!(self, |pool| {
            sqlx::query("UPDATE sessions SET expires_at = $2 WHERE id_hash = $1")
                .bind(id_hash)
                .bind(expires_at)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(updated > 0)
    }

    /// Ends one session (logout). Returns whether it existed.
    pub async fn delete_session(&self, id_hash: &str) -> Result<bool> {
        let deleted = on_pool!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                .bind(id_hash)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted > 0)
    }

    /// Ends every session of a user. Returns how many.
    pub async fn delete_sessions_of_user(&self, user: AdminUserId) -> Result<u64> {
        Ok(on_pool!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user.0)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// Removes sessions that ended at or before `now`. Returns how many.
    pub async fn delete_expired_sessions(&self, now: i64) -> Result<u64> {
        Ok(on_pool!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// Stores a new API token's hash under a name.
    pub async fn create_api_token(&self, name: &str, token_hash: &str) -> Result<ApiToken> {
        let name = fields::label("name", name, 1, 100)?;
        required("token_hash", token_hash)?;
        let created_at = now_ms();
        let result: Result<i64> = async {
            Ok(on_pool!(self, |pool| {
                sqlx::query_scalar(
                    "INSERT INTO api_tokens (name, token_hash, created_at) \
                     VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(&name)
                .bind(token_hash)
                .bind(created_at)
                .fetch_one(pool)
                .await?
            }))
        }
        .await;
        let id = match result {
            Ok(id) => id,
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::conflict(
                    "token_hash",
                    "a token with this hash already exists",
                ));
            }
            Err(e) => return Err(e),
        };
        Ok(ApiToken {
            id: ApiTokenId(id),
            name,
            token_hash: token_hash.to_owned(),
            created_at,
            last_used_at: None,
        })
    }

    /// The token with this hash, if any (the API's auth lookup).
    pub async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        let sql = format!("{SELECT_TOKEN} WHERE token_hash = $1");
        let row: Option<ApiTokenRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(token_hash)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(ApiToken::from))
    }

    /// Every API token, oldest first.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        let sql = format!("{SELECT_TOKEN} ORDER BY id");
        let rows: Vec<ApiTokenRow> =
            on_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await?);
        Ok(rows.into_iter().map(ApiToken::from).collect())
    }

    /// Records a use of the token at `now`.
    pub async fn touch_api_token(&self, id: ApiTokenId, now: i64) -> Result<()> {
        let updated = on_pool!(self, |pool| {
            sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                .bind(id.0)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if updated == 0 {
            return Err(StoreError::NotFound { what: "API token" });
        }
        Ok(())
    }

    /// Revokes a token.
    pub async fn delete_api_token(&self, id: ApiTokenId) -> Result<()> {
        let deleted = on_pool!(self, |pool| {
            sqlx::query("DELETE FROM api_tokens WHERE id = $1")
                .bind(id.0)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if deleted == 0 {
            return Err(StoreError::NotFound { what: "API token" });
        }
        Ok(())
    }
}
