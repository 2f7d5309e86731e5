//! Shared helpers for the end-to-end and contract tests: fresh databases per
//! test (a new PostgreSQL database each, a new SQLite file each), a server on
//! an ephemeral port, and a small GraphQL client.

use ftl_commands::Db;
use ftl_commands::db::DbOptions;
use ftl_commands::store::{DynStore, postgres::PostgresEventStore, sqlite::SqliteEventStore};
use std::sync::Arc;

pub mod mock_provider;

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
        Db::Sqlite { write, read, sync } => {
            Arc::new(SqliteEventStore::new(write.clone(), read.clone(), *sync))
        }
        Db::Postgres(pool) => Arc::new(PostgresEventStore::new(pool.clone()).await?),
    };
    Ok((db, store))
}

pub async fn fresh_store(backend: Backend) -> anyhow::Result<(Db, DynStore)> {
    open_store(&backend.fresh_url().await?).await
}

/// Every read-model row, in a canonical order, each column as text.
pub async fn read_model_snapshot(db: &Db) -> anyhow::Result<Vec<String>> {
    let tables = [
        (
            "jobs",
            "job_id, project_id, name, status, config, tags, failure_reason, error, seq",
            "seq",
        ),
        // Points and rollups by their series' job and key: series ids are
        // the read model's own numbering.
        (
            "metric_points p JOIN metric_series s ON s.series_id = p.series_id",
            "s.job_id, s.key, p.step, p.value, p.ts_ms",
            "s.job_id, s.key, p.step, p.pos, p.idx",
        ),
        (
            "metric_rollups r JOIN metric_series s ON s.series_id = r.series_id",
            "s.job_id, s.key, r.level, r.bucket, r.n, r.nan_n, r.pinf_n, r.ninf_n, r.finite_n, r.vsum, r.vmin, r.vmax, r.min_step, r.max_step, r.last_step, r.last_value",
            "s.job_id, s.key, r.level, r.bucket",
        ),
        (
            "metric_latest",
            "job_id, key, step, value, ts_ms",
            "job_id, key",
        ),
        (
            "api_keys",
            "key_id, project_id, name, scope, secret_sha256, prefix",
            "key_id",
        ),
        ("projects", "project_id, name", "project_id"),
    ];
    let mut out = Vec::new();
    for (table, cols, order) in tables {
        // SQLite's quote() renders blobs (uuids) as hex and floats exactly.
        let as_text = |c: &str| match db {
            Db::Sqlite { .. } => format!("quote({c})"),
            Db::Postgres(_) => format!("COALESCE(CAST({c} AS TEXT), 'NULL')"),
        };
        let text = cols
            .split(", ")
            .map(as_text)
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let q = format!("SELECT {text} FROM {table} ORDER BY {order}");
        let rows: Vec<String> = ftl_projections::on_pool!(db, |pool| sqlx::query_scalar(
            sqlx::AssertSqlSafe(q.clone())
        )
        .fetch_all(pool)
        .await)?;
        anyhow::ensure!(
            !rows.is_empty(),
            "{table} is empty: the snapshot would prove nothing"
        );
        out.push(format!("{table}: {} rows", rows.len()));
        out.extend(rows);
    }
    Ok(out)
}

/// Helpers the benchmarks share.
pub mod bench {
    use super::Backend;

    /// `--backend`: which store backend(s) a benchmark runs on.
    #[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
    pub enum BackendArg {
        Sqlite,
        Postgres,
        Both,
    }

    impl BackendArg {
        pub fn backends(self) -> Vec<Backend> {
            match self {
                BackendArg::Sqlite => vec![Backend::Sqlite],
                BackendArg::Postgres => vec![Backend::Postgres],
                BackendArg::Both => vec![Backend::Sqlite, Backend::Postgres],
            }
        }
    }

    /// The first line of every benchmark's output.
    pub fn print_machine() {
        println!(
            "machine: {} cores, {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            std::env::consts::ARCH
        );
    }

    /// `sqlite` or `postgres`, from a database URL.
    pub fn label(url: &str) -> &'static str {
        if url.starts_with("sqlite:") {
            "sqlite"
        } else {
            "postgres"
        }
    }

    /// The value at fraction `p` of the sorted samples (nearest rank).
    pub fn pct(mut v: Vec<f64>, p: f64) -> f64 {
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * p).round() as usize]
    }

    pub fn median(v: Vec<f64>) -> f64 {
        let n = v.len();
        let mut v = v;
        v.sort_by(f64::total_cmp);
        v[n / 2]
    }

    /// Removes a benchmark's database (file, or PostgreSQL database).
    pub async fn drop_database(url: &str) {
        if let Some(path) = url.strip_prefix("sqlite:") {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
        } else if let Some((_, name)) = url.rsplit_once('/') {
            use sqlx::Connection;
            if let Ok(mut c) = sqlx::PgConnection::connect(&super::pg_admin_url()).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut c)
                .await;
            }
        }
    }
}
