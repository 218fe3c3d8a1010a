//! Measures what the store costs on this machine: sequential REGISTER-style
//! binding upserts (one commit each), line lookups, and, for the decision on
//! durability, single-row commits with SQLite `synchronous=FULL` against
//! `NORMAL`. Run: `cargo run --release -p palaver-store --example write_rate`
//! (set `PALAVER_TEST_POSTGRES_URL` to measure PostgreSQL too).

use std::str::FromStr;
use std::time::Instant;

use palaver_store::{Binding, LineFields, Store, Transport};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

const N: u32 = 2_000;

async fn measure(label: &str, store: &Store) -> Result<(), Box<dyn std::error::Error>> {
    let line = store
        .create_line(&LineFields {
            extension: "1001".into(),
            display_name: "Bench".into(),
            password: "secret".into(),
        })
        .await?;
    let start = Instant::now();
    for i in 0..N {
        store
            .upsert_binding(&Binding {
                line_id: line.id,
                contact: format!("sip:1001@127.0.0.1:{}", 5000 + i % 50),
                received: "127.0.0.1:5062".into(),
                transport: Transport::Udp,
                expires_at: i64::from(i) + 3_600_000,
                call_id: format!("c{i}"),
                cseq: i,
                user_agent: "bench".into(),
                instance: None,
            })
            .await?;
    }
    let upserts = f64::from(N) / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..N {
        store.line_by_extension("1001").await?;
    }
    let lookups = f64::from(N) / start.elapsed().as_secs_f64();
    println!("{label}: {upserts:.0} binding upserts/s, {lookups:.0} line_by_extension/s");
    Ok(())
}

async fn raw_commits(sync: SqliteSynchronous) -> Result<f64, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let options = SqliteConnectOptions::from_str("sqlite://x.db")?
        .filename(dir.path().join("x.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(sync);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        .execute(&pool)
        .await?;
    let start = Instant::now();
    for i in 0..N {
        sqlx::query("INSERT INTO t (v) VALUES ($1)")
            .bind(i.to_string())
            .execute(&pool)
            .await?;
    }
    Ok(f64::from(N) / start.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(None, dir.path()).await?;
    measure("sqlite (WAL, synchronous=FULL)", &store).await?;
    store.close().await;
    if let Ok(url) = std::env::var("PALAVER_TEST_POSTGRES_URL") {
        let store = Store::open(Some(&url), dir.path()).await?;
        // The example reuses the database: start from an empty line table.
        for line in store.lines().await? {
            store.delete_line(line.id).await?;
        }
        measure("postgres", &store).await?;
        store.close().await;
    }
    println!(
        "raw single-row commits: synchronous=FULL {:.0}/s, NORMAL {:.0}/s",
        raw_commits(SqliteSynchronous::Full).await?,
        raw_commits(SqliteSynchronous::Normal).await?
    );
    Ok(())
}
