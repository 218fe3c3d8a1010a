//! Test databases for the backend-generic repository tests: a fresh SQLite
//! file in a temp dir, or a fresh PostgreSQL database created on the server
//! named by `PALAVER_TEST_POSTGRES_URL` (start one with
//! `scripts/pg-test-server.sh start DIR`). Each test gets its own database,
//! so tests run in parallel. [`backend_test!`] turns one `async fn(Store)`
//! into a `sqlite` and a `postgres` test.

use std::io::Write;
use std::str::FromStr;
use std::sync::Once;

use palaver_store::Store;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

pub const POSTGRES_URL_VAR: &str = "PALAVER_TEST_POSTGRES_URL";
pub const REQUIRE_POSTGRES_VAR: &str = "PALAVER_REQUIRE_POSTGRES";

/// A database that exists for one test.
pub struct TestDb {
    pub store: Store,
    /// Reopens the same database (a "restart").
    pub url: String,
    kind: Kind,
}

enum Kind {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(None, dir.path()).await.expect("open sqlite");
        let url = format!(
            "sqlite://{}",
            dir.path().join(palaver_store::SQLITE_FILE_NAME).display()
        );
        TestDb {
            store,
            url,
            kind: Kind::Sqlite(dir),
        }
    }

    /// `None` (after a notice on stderr) when no server is configured, unless
    /// `PALAVER_REQUIRE_POSTGRES=1`, which turns that into a failure.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => {
                if std::env::var(REQUIRE_POSTGRES_VAR).as_deref() == Ok("1") {
                    panic!("{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set");
                }
                static NOTICE: Once = Once::new();
                NOTICE.call_once(|| {
                    // Straight to stderr: libtest captures eprintln! output.
                    let _ = writeln!(
                        std::io::stderr(),
                        "NOTICE: PostgreSQL tests skipped: {POSTGRES_URL_VAR} is not set \
                         (scripts/pg-test-server.sh start DIR prints a URL)"
                    );
                });
                return None;
            }
        };
        let name = format!("palaver_t_{:016x}", rand::random::<u64>());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .expect("connect to PALAVER_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        admin.close().await.ok();
        let url = with_database(&admin_url, &name);
        let store = Store::open(Some(&url), std::path::Path::new("/nonexistent"))
            .await
            .expect("open postgres");
        Some(TestDb {
            store,
            url,
            kind: Kind::Postgres { admin_url, name },
        })
    }

    /// Opens a second store on the same database, as a restart would.
    pub async fn reopen(&self) -> Store {
        Store::open(Some(&self.url), std::path::Path::new("/nonexistent"))
            .await
            .expect("reopen")
    }

    /// Closes the store and drops the PostgreSQL database.
    pub async fn finish(self) {
        self.store.close().await;
        if let Kind::Postgres { admin_url, name } = &self.kind {
            let mut admin = PgConnection::connect(admin_url).await.expect("connect");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .expect("drop test database");
        }
    }
}

/// `base` with its database name replaced by `name`.
fn with_database(base: &str, name: &str) -> String {
    // Validate it first so a malformed URL fails here, with a clear message.
    PgConnectOptions::from_str(base).expect("PALAVER_TEST_POSTGRES_URL is not a postgres URL");
    let (main, query) = match base.split_once('?') {
        Some((m, q)) => (m, format!("?{q}")),
        None => (base, String::new()),
    };
    let scheme_end = main.find("://").map_or(0, |i| i + 3);
    let authority_end = main[scheme_end..]
        .find('/')
        .map_or(main.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &main[..authority_end])
}

/// `backend_test!(name);` runs `async fn name(db: &TestDb)` on SQLite and on
/// PostgreSQL, as `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! backend_test {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let db = $crate::common::TestDb::sqlite().await;
                super::$name(&db).await;
                db.finish().await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(db) = $crate::common::TestDb::postgres().await else {
                    return;
                };
                super::$name(&db).await;
                db.finish().await;
            }
        }
    };
}

#[test]
fn database_name_is_replaced() {
    assert_eq!(
        with_database("postgres://u@127.0.0.1:5432/base", "x"),
        "postgres://u@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@127.0.0.1:5432", "x"),
        "postgres://u@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgresql://u:p@h/base?sslmode=disable", "x"),
        "postgresql://u:p@h/x?sslmode=disable"
    );
}
