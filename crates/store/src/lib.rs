//! Persistent storage: sqlx repositories and migrations for SQLite and PostgreSQL.
