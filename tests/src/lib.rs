//! Shared helpers for the end-to-end and contract tests: fresh databases per
//! test (a new PostgreSQL database each, a new SQLite file each), a server on
//! an ephemeral port, and a small GraphQL client.

use ftl_commands::Db;
use ftl_commands::db::DbOptions;
use ftl_commands::store::{DynStore, postgres::PostgresEventStore, sqlite::SqliteEventStore};
use std::sync::Arc;

pub fn pg_admin_url() -> String {
    std::env::var("FTL_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A new, empty PostgreSQL database; its URL.
pub async fn fresh_pg_url() -> anyhow::Result<String> {
    use sqlx::Connection;
    let admin = pg_admin_url();
    let name = format!("ftl_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin);
    Ok(format!("{base}/{name}"))
}

/// A new SQLite database file under the system temp folder; its URL.
pub fn fresh_sqlite_url() -> String {
    let dir = std::env::temp_dir().join("ftl-tests");
    let _ = std::fs::create_dir_all(&dir);
    format!(
        "sqlite:{}",
        dir.join(format!("{}.db", uuid::Uuid::new_v4().simple()))
            .display()
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub async fn fresh_url(self) -> anyhow::Result<String> {
        match self {
            Backend::Sqlite => Ok(fresh_sqlite_url()),
            Backend::Postgres => fresh_pg_url().await,
        }
    }
}

pub async fn open_store(url: &str) -> anyhow::Result<(Db, DynStore)> {
    let db = Db::connect(&DbOptions::new(url)).await?;
    db.migrate().await?;
    let store: DynStore = match &db {
        Db::Sqlite { write, read } => Arc::new(SqliteEventStore::new(write.clone(), read.clone())),
        Db::Postgres(pool) => Arc::new(PostgresEventStore::new(pool.clone()).await?),
    };
    Ok((db, store))
}

pub async fn fresh_store(backend: Backend) -> anyhow::Result<(Db, DynStore)> {
    open_store(&backend.fresh_url().await?).await
}
