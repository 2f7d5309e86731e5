//! The relational database behind the event store and the read models.
//! The backend is chosen by URL scheme: `sqlite:` (embedded default) or `postgres:`.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Db {
    /// One writer connection (SQLite has one writer; queuing in-process avoids
    /// SQLITE_BUSY) and a pool of readers (WAL lets them run beside it).
    Sqlite {
        write: SqlitePool,
        read: SqlitePool,
        /// The configured level for appends to the event log.
        sync: SqliteSync,
    },
    Postgres(PgPool),
}

/// SQLite's `synchronous` level for one write transaction. It belongs to the
/// connection, and the one writer connection carries both the event log and
/// the read models, so every write transaction opens with its own level:
/// appends to the log at the configured one, read-model transactions at
/// `Normal` — they are derived from the log and commit with their
/// checkpoint, so a power loss that drops the last of them only makes the
/// runner apply those events again. A `Full` commit syncs the whole WAL,
/// read-model frames before it included; a `Normal` one survives a crash of
/// the process (`kill -9`) as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteSync {
    Full,
    Normal,
}

impl SqliteSync {
    /// `full` (or anything unknown: fail safe) or `normal`.
    pub fn parse(s: &str) -> Self {
        match s {
            "normal" => SqliteSync::Normal,
            _ => SqliteSync::Full,
        }
    }

    /// The statement that opens a write transaction at this level (one round
    /// trip to the connection's worker thread).
    pub fn begin(self) -> &'static str {
        match self {
            SqliteSync::Full => "PRAGMA synchronous = FULL; BEGIN IMMEDIATE",
            SqliteSync::Normal => "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DbOptions {
    pub url: String,
    /// PostgreSQL pool size; SQLite readers.
    pub max_connections: u32,
    /// SQLite `synchronous` for appends to the log: `full` (survives power
    /// loss) or `normal` (survives a process crash, faster). Read models
    /// always commit at `normal` (see [`SqliteSync`]).
    pub sqlite_synchronous: String,
}

impl DbOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            sqlite_synchronous: "full".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL {0:?}: use sqlite:PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Statements slower than this are logged at debug level: sqlx logs the
/// whole statement text, which for a bulk insert is megabytes of placeholders.
const SLOW_STATEMENT: Duration = Duration::from_secs(1);

impl Db {
    pub async fn connect(opts: &DbOptions) -> Result<Db, DbError> {
        let url = opts.url.as_str();
        if url.starts_with("sqlite:") {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or(path);
            if let Some(parent) = std::path::Path::new(path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)?;
            }
            let sync = SqliteSync::parse(&opts.sqlite_synchronous);
            let base = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(match sync {
                    SqliteSync::Full => SqliteSynchronous::Full,
                    SqliteSync::Normal => SqliteSynchronous::Normal,
                })
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .pragma("cache_size", "-65536")
                .pragma("temp_store", "memory")
                .log_statements(log::LevelFilter::Trace)
                .log_slow_statements(log::LevelFilter::Debug, SLOW_STATEMENT);
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(60))
                .connect_with(base.clone())
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(opts.max_connections.max(2))
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(base.read_only(true))
                .await?;
            Ok(Db::Sqlite { write, read, sync })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let o = PgConnectOptions::from_str(url)?
                .log_statements(log::LevelFilter::Trace)
                .log_slow_statements(log::LevelFilter::Debug, SLOW_STATEMENT);
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(o)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            Err(DbError::UnsupportedUrl(url.to_string()))
        }
    }

    /// A private in-memory SQLite database: one connection, kept for the
    /// pool's life (an in-memory database lives as long as its connection),
    /// serving both reads and writes. Read models folded for one query (see
    /// `ftl_projections::replay`) live here and vanish with it.
    pub async fn memory() -> Result<Db, sqlx::Error> {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(SqliteConnectOptions::from_str("sqlite::memory:")?)
            .await?;
        Ok(Db::Sqlite {
            write: pool.clone(),
            read: pool,
            sync: SqliteSync::Normal,
        })
    }

    /// Applies the committed migrations of this backend (idempotent).
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Db::Sqlite { write, .. } => sqlx::migrate!("../migrations/sqlite").run(write).await?,
            Db::Postgres(pool) => sqlx::migrate!("../migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Db::Sqlite { .. } => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Db::Sqlite { read, .. } => sqlx::query("SELECT 1").execute(read).await.map(|_| ()),
            Db::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite { write, read, .. } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}
