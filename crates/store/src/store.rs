//! [`Store`]: opening the database (SQLite file or PostgreSQL URL), applying
//! the embedded migrations, and the two macros every repository module uses
//! to run one piece of SQL on whichever pool is open.
//!
//! Why an enum over two pools and not sqlx's `Any` driver: see
//! `docs/decisions/0003-storage.md`. In short, both backends accept the same
//! `$1` placeholders and nearly the same SQL, so most queries are written once
//! and compiled twice by [`on_pool!`]; the few that differ match on the pool.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::{Result, StoreError};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// File name of the SQLite database inside the data dir.
pub const SQLITE_FILE_NAME: &str = "palaver.db";

/// How long a SQLite writer waits for another writer before giving up. Writes
/// are short (single rows), so five seconds means "something is stuck".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (the default: one file in the data dir).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

#[derive(Clone, Debug)]
pub(crate) enum Pools {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The handle to Palaver's database. Cheap to clone (it holds a connection
/// pool); every method is one short transaction at most.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pools: Pools,
}

/// Runs `$body` with `$pool` bound to the open pool (`&SqlitePool` or
/// `&PgPool`). The body is compiled once per backend, so the same query text
/// and row types serve both.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pools {
            $crate::store::Pools::Sqlite($pool) => $body,
            $crate::store::Pools::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` inside a write transaction with `$tx` bound to it, commits
/// when the body finishes, and rolls back (on drop) when it returns early via
/// `?`. SQLite transactions start with `BEGIN IMMEDIATE`: they take the write
/// lock up front, so two writers queue on the busy timeout instead of failing
/// with SQLITE_BUSY when a reader upgrades.
macro_rules! in_transaction {
    ($store:expr, |$tx:ident| $body:expr) => {
        match &$store.pools {
            $crate::store::Pools::Sqlite(pool) => {
                #[allow(unused_mut)]
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let value = $body;
                $tx.commit().await?;
                value
            }
            $crate::store::Pools::Postgres(pool) => {
                #[allow(unused_mut)]
                let mut $tx = pool.begin().await?;
                let value = $body;
                $tx.commit().await?;
                value
            }
        }
    };
}

pub(crate) use {in_transaction, on_pool};

impl Store {
    /// Opens the configured database and brings its schema up to date.
    ///
    /// `database_url` decides the backend: `postgres://…` or
    /// `postgresql://…` → PostgreSQL; `sqlite:PATH` → that SQLite file;
    /// absent or empty → `palaver.db` in `data_dir` (created if missing).
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Store> {
        match database_url.map(str::trim).filter(|u| !u.is_empty()) {
            None => {
                std::fs::create_dir_all(data_dir).map_err(sqlx::Error::Io)?;
                Store::open_sqlite(&data_dir.join(SQLITE_FILE_NAME)).await
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Store::open_postgres(url).await
            }
            Some(url) if url.starts_with("sqlite:") => {
                let options = SqliteConnectOptions::from_str(url)?;
                Store::open_sqlite_with(options).await
            }
            Some(url) => Err(StoreError::invalid(
                "database_url",
                format!(
                    "{:?} is neither postgres://… nor sqlite:…",
                    url.split(':').next().unwrap_or(url)
                ),
            )),
        }
    }

    /// Opens (creating if missing) the SQLite database at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        Store::open_sqlite_with(SqliteConnectOptions::new().filename(path)).await
    }

    async fn open_sqlite_with(options: SqliteConnectOptions) -> Result<Store> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk when it returns, even across a power
            // cut; see docs/decisions/0003-storage.md for the cost.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        SQLITE_MIGRATIONS.run(&pool).await?;
        Ok(Store {
            pools: Pools::Sqlite(pool),
        })
    }

    /// Connects to PostgreSQL at `url` (`postgres://user@host:port/db?…`).
    pub async fn open_postgres(url: &str) -> Result<Store> {
        let options = PgConnectOptions::from_str(url)?.application_name("palaver");
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect_with(options)
            .await?;
        POSTGRES_MIGRATIONS.run(&pool).await?;
        Ok(Store {
            pools: Pools::Postgres(pool),
        })
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Sqlite(_) => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
        }
    }

    /// Waits for running queries and closes every connection. For SQLite
    /// this also checkpoints the WAL into the main file. Call at shutdown.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}

/// The current time as Unix milliseconds, the unit of every timestamp here.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        // A clock before 1970 is a broken host; 0 keeps ordering sane.
        .unwrap_or(0)
}
