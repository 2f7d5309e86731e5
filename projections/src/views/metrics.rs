//! Metric points, multi-resolution rollups, and the latest value per key.
//!
//! Every point lands in `metric_points`. Rollups keep, per (series, level,
//! bucket) with buckets of 8^level steps, the count, NaN/±∞ counts, the sum
//! of finite values, min, max and the last value. A series query picks the
//! coarsest level finer than the requested resolution, so it reads at most
//! ~8 × maxPoints rows whatever the series length, and min/max per bucket
//! keep a single-step spike visible after downsampling.

use super::{from_sql_f64, sqlite_values, to_sql_f64, types};
use crate::DbTx;
use crate::runner::{Decoded, Projection, ProjectionError};
use async_trait::async_trait;
use ftl_commands::Db;
use ftl_domain::DomainEvent;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use sqlx::Row;
use std::cmp::Ordering;
use uuid::Uuid;

pub const LEVELS: u32 = 6;
pub const FANOUT: i64 = 8;

pub fn level_width(level: u32) -> i64 {
    FANOUT.pow(level)
}

pub struct MetricsProjection;

/// (series, level, bucket)
type RollupKey = (i64, u32, i64);

/// A point row: (series, step, log position, index in its event, value, timestamp).
type PointRow = (i64, i64, i64, i64, f64, i64);

/// Aggregate of a set of points; merges associatively.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agg {
    pub n: i64,
    pub nan_n: i64,
    pub pinf_n: i64,
    pub ninf_n: i64,
    pub finite_n: i64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub min_step: i64,
    pub max_step: i64,
    pub last_step: i64,
    pub last_value: f64,
}

impl Agg {
    pub fn of(step: i64, v: f64) -> Self {
        let finite = v.is_finite();
        Agg {
            n: 1,
            nan_n: i64::from(v.is_nan()),
            pinf_n: i64::from(v == f64::INFINITY),
            ninf_n: i64::from(v == f64::NEG_INFINITY),
            finite_n: i64::from(finite),
            sum: if finite { v } else { 0.0 },
            min: (!v.is_nan()).then_some(v),
            max: (!v.is_nan()).then_some(v),
            min_step: step,
            max_step: step,
            last_step: step,
            last_value: v,
        }
    }

    /// Merges `o`, which arrived later (it wins ties on `last_step`).
    pub fn merge(&mut self, o: &Agg) {
        self.n += o.n;
        self.nan_n += o.nan_n;
        self.pinf_n += o.pinf_n;
        self.ninf_n += o.ninf_n;
        self.finite_n += o.finite_n;
        self.sum += o.sum;
        self.min = match (self.min, o.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, o.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.min_step = self.min_step.min(o.min_step);
        self.max_step = self.max_step.max(o.max_step);
        if o.last_step >= self.last_step {
            self.last_step = o.last_step;
            self.last_value = o.last_value;
        }
    }

    /// Mean of the non-NaN values: ±∞ dominate; +∞ with −∞ is NaN; all-NaN is NaN.
    pub fn mean(&self) -> f64 {
        match (self.pinf_n > 0, self.ninf_n > 0) {
            (true, true) => f64::NAN,
            (true, false) => f64::INFINITY,
            (false, true) => f64::NEG_INFINITY,
            _ if self.finite_n > 0 => self.sum / self.finite_n as f64,
            _ => f64::NAN,
        }
    }
}

#[async_trait]
impl Projection for MetricsProjection {
    fn name(&self) -> &'static str {
        "metrics"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "metric_series",
            "metric_points",
            "metric_rollups",
            "metric_latest",
        ]
    }

    /// A series — one key of one job — has an integer id: points and rollups
    /// are keyed by it, so their B-trees compare and bind integers only, and
    /// on SQLite they are clustered by it (`WITHOUT ROWID`: one tree per
    /// table, no separate index). A point's key ends with its log position
    /// and index in its event, so repeated steps stay distinct and a rebuild
    /// produces the same rows.
    fn ddl(&self, postgres: bool, s: &str) -> String {
        let t = types(postgres);
        let (u, f) = (t.uuid, t.float);
        let (id, clustered) = if postgres {
            ("BIGINT", "")
        } else {
            ("INTEGER", " WITHOUT ROWID")
        };
        format!(
            "CREATE TABLE IF NOT EXISTS metric_series{s} (
                series_id {id} NOT NULL PRIMARY KEY, job_id {u} NOT NULL, key TEXT NOT NULL);
             CREATE UNIQUE INDEX IF NOT EXISTS metric_series{s}_key ON metric_series{s} (job_id, key);
             CREATE TABLE IF NOT EXISTS metric_points{s} (
                series_id BIGINT NOT NULL, step BIGINT NOT NULL, pos BIGINT NOT NULL, idx BIGINT NOT NULL,
                value {f}, ts_ms BIGINT NOT NULL,
                PRIMARY KEY (series_id, step, pos, idx)){clustered};
             CREATE TABLE IF NOT EXISTS metric_rollups{s} (
                series_id BIGINT NOT NULL, level BIGINT NOT NULL, bucket BIGINT NOT NULL,
                n BIGINT NOT NULL, nan_n BIGINT NOT NULL, pinf_n BIGINT NOT NULL, ninf_n BIGINT NOT NULL,
                finite_n BIGINT NOT NULL, vsum {f} NOT NULL, vmin {f}, vmax {f},
                min_step BIGINT NOT NULL, max_step BIGINT NOT NULL, last_step BIGINT NOT NULL, last_value {f},
                PRIMARY KEY (series_id, level, bucket)){clustered};
             CREATE TABLE IF NOT EXISTS metric_latest{s} (
                job_id {u} NOT NULL, key TEXT NOT NULL, step BIGINT NOT NULL, value {f}, ts_ms BIGINT NOT NULL,
                PRIMARY KEY (job_id, key));"
        )
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type == "job.metrics_logged"
    }

    async fn apply(
        &self,
        tx: &mut DbTx,
        s: &str,
        events: &[Decoded],
    ) -> Result<(), ProjectionError> {
        let mut latest: HashMap<(Uuid, &str), (i64, f64, i64)> = HashMap::default();
        // The batch's series in order of first appearance (ids are handed
        // out in that order, so a rebuild numbers them as the live run did).
        let mut order: Vec<(Uuid, &str)> = Vec::new();
        let mut seen: HashMap<(Uuid, &str), usize> = HashMap::default();
        for d in events {
            let DomainEvent::MetricsLogged(m) = &d.event else {
                continue;
            };
            let job = m.job_id.0;
            for p in &m.points {
                let series = (job, p.key.as_str());
                seen.entry(series).or_insert_with(|| {
                    order.push(series);
                    order.len() - 1
                });
                let e = latest
                    .entry(series)
                    .or_insert((p.step, p.value, p.timestamp_ms));
                if newer(p.step, p.timestamp_ms, p.value, e) {
                    *e = (p.step, p.value, p.timestamp_ms);
                }
            }
        }
        let ids = series_ids(tx, s, &order).await?;
        let id_of = |job: Uuid, key: &str| seen.get(&(job, key)).map(|i| ids[*i]);
        let mut rows: Vec<PointRow> = Vec::new();
        let mut touched: HashSet<RollupKey> = HashSet::default();
        for d in events {
            let DomainEvent::MetricsLogged(m) = &d.event else {
                continue;
            };
            for (i, p) in m.points.iter().enumerate() {
                let Some(series) = id_of(m.job_id.0, &p.key) else {
                    continue;
                };
                let pos = d.position as i64;
                rows.push((series, p.step, pos, i as i64, p.value, p.timestamp_ms));
                for level in 1..=LEVELS {
                    touched.insert((series, level, p.step / level_width(level)));
                }
            }
        }
        // Rollups fold every point into the stored aggregate one by one, in
        // log order, so the float operations are the same whatever the batch
        // boundaries: a rebuild yields bit-identical sums. Each touched row is
        // read once and written once per batch.
        let mut rollups = load_rollups(tx, s, &touched).await?;
        for (series, step, _, _, value, _) in &rows {
            let point = Agg::of(*step, *value);
            for level in 1..=LEVELS {
                rollups
                    .entry((*series, level, step / level_width(level)))
                    .and_modify(|a| a.merge(&point))
                    .or_insert(point);
            }
        }
        // In key order, each series' points go in at its tree's edge.
        rows.sort_unstable_by_key(|r| (r.0, r.1, r.2, r.3));
        insert_points(tx, s, &rows).await?;
        upsert_rollups(tx, s, &rollups).await?;
        upsert_latest(tx, s, &latest).await?;
        Ok(())
    }
}

/// Rows per statement, within SQLite's 32,766 bound variables.
const SERIES_ROWS: usize = 10_000;
const POINT_ROWS: usize = 5_000;
const ROLLUP_ROWS: usize = 2_000;

/// The ids of the given series, in the same order; series seen for the first
/// time get the next free ids, in that order.
async fn series_ids(
    tx: &mut DbTx,
    s: &str,
    series: &[(Uuid, &str)],
) -> Result<Vec<i64>, sqlx::Error> {
    let mut known: HashMap<(Uuid, String), i64> = HashMap::default();
    match tx {
        DbTx::Sqlite(t) => {
            for chunk in series.chunks(SERIES_ROWS) {
                let sql = format!(
                    "WITH k(job_id, key) AS (VALUES {})
                     SELECT s.series_id, s.job_id, s.key FROM k CROSS JOIN metric_series{s} s
                     WHERE s.job_id = k.job_id AND s.key = k.key",
                    sqlite_values(chunk.len(), 2)
                );
                let mut q = sqlx::query_as::<_, (i64, Uuid, String)>(sqlx::AssertSqlSafe(sql));
                for (job, key) in chunk {
                    q = q.bind(*job).bind(*key);
                }
                for (id, job, key) in q.fetch_all(&mut **t).await? {
                    known.insert((job, key), id);
                }
            }
        }
        DbTx::Postgres(t) => {
            let sql = format!(
                "SELECT s.series_id, s.job_id, s.key
                 FROM UNNEST($1::uuid[], $2::text[]) AS k(job_id, key)
                 JOIN metric_series{s} s ON s.job_id = k.job_id AND s.key = k.key"
            );
            let rows = sqlx::query_as::<_, (i64, Uuid, String)>(sqlx::AssertSqlSafe(sql))
                .bind(series.iter().map(|k| k.0).collect::<Vec<_>>())
                .bind(series.iter().map(|k| k.1).collect::<Vec<_>>())
                .fetch_all(&mut **t)
                .await?;
            for (id, job, key) in rows {
                known.insert((job, key), id);
            }
        }
    }
    let found: Vec<Option<i64>> = series
        .iter()
        .map(|(job, key)| known.get(&(*job, (*key).to_string())).copied())
        .collect();
    if found.iter().all(Option::is_some) {
        return Ok(found.into_iter().flatten().collect());
    }
    let max_sql = format!("SELECT COALESCE(MAX(series_id), 0) FROM metric_series{s}");
    let mut next: i64 = match tx {
        DbTx::Sqlite(t) => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(max_sql))
                .fetch_one(&mut **t)
                .await?
        }
        DbTx::Postgres(t) => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(max_sql))
                .fetch_one(&mut **t)
                .await?
        }
    };
    let mut ids = Vec::with_capacity(series.len());
    let mut new: Vec<(i64, Uuid, &str)> = Vec::new();
    for ((job, key), id) in series.iter().zip(found) {
        ids.push(id.unwrap_or_else(|| {
            next += 1;
            new.push((next, *job, key));
            next
        }));
    }
    match tx {
        DbTx::Sqlite(t) => {
            for chunk in new.chunks(SERIES_ROWS) {
                let sql = format!(
                    "INSERT INTO metric_series{s} (series_id, job_id, key) VALUES {}",
                    sqlite_values(chunk.len(), 3)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (id, job, key) in chunk {
                    q = q.bind(*id).bind(*job).bind(*key);
                }
                q.execute(&mut **t).await?;
            }
        }
        DbTx::Postgres(t) => {
            let sql = format!(
                "INSERT INTO metric_series{s} (series_id, job_id, key)
                 SELECT * FROM UNNEST($1::int8[], $2::uuid[], $3::text[])"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(new.iter().map(|r| r.0).collect::<Vec<_>>())
                .bind(new.iter().map(|r| r.1).collect::<Vec<_>>())
                .bind(new.iter().map(|r| r.2).collect::<Vec<_>>())
                .execute(&mut **t)
                .await?;
        }
    }
    Ok(ids)
}

/// An `Agg` from the aggregate columns of a rollup row (either backend; the
/// same generic shape as `catalog`'s row readers).
fn agg_row<R: Row>(r: &R) -> Result<Agg, sqlx::Error>
where
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> f64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    Ok(Agg {
        n: r.try_get("n")?,
        nan_n: r.try_get("nan_n")?,
        pinf_n: r.try_get("pinf_n")?,
        ninf_n: r.try_get("ninf_n")?,
        finite_n: r.try_get("finite_n")?,
        sum: r.try_get("vsum")?,
        min: r.try_get("vmin")?,
        max: r.try_get("vmax")?,
        min_step: r.try_get("min_step")?,
        max_step: r.try_get("max_step")?,
        last_step: r.try_get("last_step")?,
        last_value: from_sql_f64(r.try_get("last_value")?),
    })
}

/// A loaded rollup row: its key and aggregate.
fn rollup_entry<R: Row>(r: &R) -> Result<(RollupKey, Agg), sqlx::Error>
where
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> f64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    let level = u32::try_from(r.try_get::<i64, _>("level")?).unwrap_or(0);
    let series: i64 = r.try_get("series_id")?;
    let bucket: i64 = r.try_get("bucket")?;
    Ok(((series, level, bucket), agg_row(r)?))
}

/// The aggregate columns of `metric_rollups`, in `Agg` order.
macro_rules! rollup_cols {
    () => {
        "n, nan_n, pinf_n, ninf_n, finite_n, vsum, vmin, vmax, min_step, max_step, last_step, last_value"
    };
}
const ROLLUP_COLS: &str = rollup_cols!();

/// The stored aggregates of the touched rollup rows.
async fn load_rollups(
    tx: &mut DbTx,
    s: &str,
    touched: &HashSet<RollupKey>,
) -> Result<HashMap<RollupKey, Agg>, sqlx::Error> {
    let keys: Vec<&RollupKey> = touched.iter().collect();
    let mut out = HashMap::with_capacity_and_hasher(keys.len(), Default::default());
    match tx {
        // The keys as a CTE, one primary-key probe each. CROSS JOIN pins the
        // loop order in SQLite: left to itself the planner scanned the whole
        // rollup table per batch (ingestion slowed as the table grew).
        DbTx::Sqlite(t) => {
            for chunk in keys.chunks(ROLLUP_ROWS) {
                let sql = format!(
                    "WITH k(series_id, level, bucket) AS (VALUES {})
                     SELECT r.series_id, r.level, r.bucket, {ROLLUP_COLS} FROM k
                     CROSS JOIN metric_rollups{s} r
                     WHERE r.series_id = k.series_id AND r.level = k.level AND r.bucket = k.bucket",
                    sqlite_values(chunk.len(), 3)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (series, level, bucket) in chunk {
                    q = q.bind(*series).bind(i64::from(*level)).bind(*bucket);
                }
                for r in q.fetch_all(&mut **t).await? {
                    let (k, a) = rollup_entry(&r)?;
                    out.insert(k, a);
                }
            }
        }
        // One statement with the keys as arrays, whatever their number.
        DbTx::Postgres(t) => {
            let sql = format!(
                "SELECT r.series_id, r.level, r.bucket, {ROLLUP_COLS}
                 FROM UNNEST($1::int8[], $2::int8[], $3::int8[]) AS k(series_id, level, bucket)
                 JOIN metric_rollups{s} r ON r.series_id = k.series_id AND r.level = k.level AND r.bucket = k.bucket"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
                .bind(keys.iter().map(|k| i64::from(k.1)).collect::<Vec<_>>())
                .bind(keys.iter().map(|k| k.2).collect::<Vec<_>>())
                .fetch_all(&mut **t)
                .await?;
            for r in rows {
                let (k, a) = rollup_entry(&r)?;
                out.insert(k, a);
            }
        }
    }
    Ok(out)
}

async fn insert_points(tx: &mut DbTx, s: &str, rows: &[PointRow]) -> Result<(), sqlx::Error> {
    match tx {
        DbTx::Sqlite(t) => {
            for chunk in rows.chunks(POINT_ROWS) {
                let sql = format!(
                    "INSERT INTO metric_points{s} (series_id, step, pos, idx, value, ts_ms) VALUES {}",
                    sqlite_values(chunk.len(), 6)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (series, step, pos, idx, value, ts) in chunk {
                    q = q
                        .bind(*series)
                        .bind(*step)
                        .bind(*pos)
                        .bind(*idx)
                        .bind(to_sql_f64(*value))
                        .bind(*ts);
                }
                q.execute(&mut **t).await?;
            }
        }
        DbTx::Postgres(t) => {
            let sql = format!(
                "INSERT INTO metric_points{s} (series_id, step, pos, idx, value, ts_ms)
                 SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::float8[], $6::int8[])"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.3).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| to_sql_f64(r.4)).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.5).collect::<Vec<_>>())
                .execute(&mut **t)
                .await?;
        }
    }
    Ok(())
}

async fn upsert_rollups(
    tx: &mut DbTx,
    s: &str,
    rollups: &HashMap<RollupKey, Agg>,
) -> Result<(), sqlx::Error> {
    let mut entries: Vec<(&RollupKey, &Agg)> = rollups.iter().collect();
    entries.sort_unstable_by_key(|(k, _)| **k);
    let t = format!("metric_rollups{s}");
    let set = ROLLUP_COLS
        .split(", ")
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let head = format!("INSERT INTO {t} (series_id, level, bucket, {ROLLUP_COLS})");
    let tail = format!("ON CONFLICT (series_id, level, bucket) DO UPDATE SET {set}");
    match tx {
        DbTx::Sqlite(tx) => {
            for chunk in entries.chunks(ROLLUP_ROWS) {
                let sql = format!("{head} VALUES {} {tail}", sqlite_values(chunk.len(), 15));
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for ((series, level, bucket), a) in chunk {
                    q = q
                        .bind(*series)
                        .bind(i64::from(*level))
                        .bind(*bucket)
                        .bind(a.n)
                        .bind(a.nan_n)
                        .bind(a.pinf_n)
                        .bind(a.ninf_n)
                        .bind(a.finite_n)
                        .bind(a.sum)
                        .bind(a.min)
                        .bind(a.max)
                        .bind(a.min_step)
                        .bind(a.max_step)
                        .bind(a.last_step)
                        .bind(to_sql_f64(a.last_value));
                }
                q.execute(&mut **tx).await?;
            }
        }
        DbTx::Postgres(tx) => {
            let sql = format!(
                "{head} SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[],
                    $6::int8[], $7::int8[], $8::int8[], $9::float8[], $10::float8[], $11::float8[], $12::int8[],
                    $13::int8[], $14::int8[], $15::float8[]) {tail}"
            );
            let col = |f: fn(&Agg) -> i64| entries.iter().map(|(_, a)| f(a)).collect::<Vec<_>>();
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(entries.iter().map(|(k, _)| k.0).collect::<Vec<_>>())
                .bind(
                    entries
                        .iter()
                        .map(|(k, _)| i64::from(k.1))
                        .collect::<Vec<_>>(),
                )
                .bind(entries.iter().map(|(k, _)| k.2).collect::<Vec<_>>())
                .bind(col(|a| a.n))
                .bind(col(|a| a.nan_n))
                .bind(col(|a| a.pinf_n))
                .bind(col(|a| a.ninf_n))
                .bind(col(|a| a.finite_n))
                .bind(entries.iter().map(|(_, a)| a.sum).collect::<Vec<_>>())
                .bind(entries.iter().map(|(_, a)| a.min).collect::<Vec<_>>())
                .bind(entries.iter().map(|(_, a)| a.max).collect::<Vec<_>>())
                .bind(col(|a| a.min_step))
                .bind(col(|a| a.max_step))
                .bind(col(|a| a.last_step))
                .bind(
                    entries
                        .iter()
                        .map(|(_, a)| to_sql_f64(a.last_value))
                        .collect::<Vec<_>>(),
                )
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// Whether a point is later than the current latest `(step, value, ts)`:
/// MLflow's `(step, timestamp, value)` order. NaN (SQL NULL) never wins a tie,
/// as in the SQL upsert below.
fn newer(step: i64, ts: i64, value: f64, cur: &(i64, f64, i64)) -> bool {
    (step, ts) > (cur.0, cur.2)
        || ((step, ts) == (cur.0, cur.2) && value.partial_cmp(&cur.1) == Some(Ordering::Greater))
}

/// Rows per `metric_latest` upsert (5 parameters each).
const LATEST_ROWS: usize = 5_000;

async fn upsert_latest(
    tx: &mut DbTx,
    s: &str,
    latest: &HashMap<(Uuid, &str), (i64, f64, i64)>,
) -> Result<(), sqlx::Error> {
    let rows: Vec<_> = latest.iter().collect();
    let tail = format!(
        "ON CONFLICT (job_id, key) DO UPDATE SET step = excluded.step, value = excluded.value, ts_ms = excluded.ts_ms
         WHERE excluded.step > metric_latest{s}.step
            OR (excluded.step = metric_latest{s}.step AND (excluded.ts_ms > metric_latest{s}.ts_ms
                OR (excluded.ts_ms = metric_latest{s}.ts_ms AND excluded.value > metric_latest{s}.value)))"
    );
    let head = format!("INSERT INTO metric_latest{s} (job_id, key, step, value, ts_ms)");
    match tx {
        DbTx::Sqlite(t) => {
            for chunk in rows.chunks(LATEST_ROWS) {
                // `WHERE true` tells SQLite's parser that ON CONFLICT belongs
                // to the INSERT, not to a join in the SELECT.
                let sql = format!(
                    "{head} SELECT * FROM (VALUES {}) WHERE true {tail}",
                    sqlite_values(chunk.len(), 5)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for ((job, key), (step, value, ts)) in chunk {
                    q = q
                        .bind(*job)
                        .bind(*key)
                        .bind(*step)
                        .bind(to_sql_f64(*value))
                        .bind(*ts);
                }
                q.execute(&mut **t).await?;
            }
        }
        DbTx::Postgres(t) => {
            let sql = format!(
                "{head} SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::float8[], $5::int8[]) {tail}"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(rows.iter().map(|r| r.0.0).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.0.1).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.1.0).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| to_sql_f64(r.1.1)).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.1.2).collect::<Vec<_>>())
                .execute(&mut **t)
                .await?;
        }
    }
    Ok(())
}

// ---- queries -------------------------------------------------------------

/// The condition selecting the series of job `$1`, key `$2`.
macro_rules! series_of {
    () => {
        "series_id = (SELECT series_id FROM metric_series WHERE job_id = $1 AND key = $2)"
    };
}

#[derive(Debug, Clone, PartialEq)]
pub struct LatestValue {
    pub key: String,
    pub step: i64,
    pub value: f64,
    pub timestamp_ms: i64,
}

/// A `LatestValue` from a row with `key, step, value, ts_ms` (either backend).
pub(crate) fn latest_of<R: Row>(r: &R) -> Result<LatestValue, sqlx::Error>
where
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> f64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    Ok(LatestValue {
        key: r.try_get("key")?,
        step: r.try_get("step")?,
        value: from_sql_f64(r.try_get("value")?),
        timestamp_ms: r.try_get("ts_ms")?,
    })
}

pub async fn latest(db: &Db, job: Uuid) -> Result<Vec<LatestValue>, sqlx::Error> {
    let sql = "SELECT key, step, value, ts_ms FROM metric_latest WHERE job_id = $1 ORDER BY key";
    crate::on_pool!(db, |pool| {
        let rows = sqlx::query(sql).bind(job).fetch_all(pool).await?;
        rows.iter().map(latest_of).collect()
    })
}

/// Every point of one series in MLflow's history order: `(timestamp, step,
/// value)`, NaN first among equals. `offset`/`limit` page through it.
pub async fn history(
    db: &Db,
    job: Uuid,
    key: &str,
    offset: i64,
    limit: Option<i64>,
) -> Result<Vec<HistoryPoint>, sqlx::Error> {
    // The key is the caller's: not read back 10,000 times. Columns are
    // taken by position (a name is looked up on every row).
    let sql = concat!(
        "SELECT step, value, ts_ms FROM metric_points WHERE ",
        series_of!(),
        " ORDER BY ts_ms, step, (value IS NOT NULL), value LIMIT $3 OFFSET $4"
    );
    crate::on_pool!(db, |pool| {
        let rows = sqlx::query(sql)
            .bind(job)
            .bind(key)
            .bind(limit.unwrap_or(i64::MAX))
            .bind(offset)
            .fetch_all(pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryPoint {
                    step: r.try_get(0)?,
                    value: from_sql_f64(r.try_get(1)?),
                    timestamp_ms: r.try_get(2)?,
                })
            })
            .collect()
    })
}

/// One point of a series' history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryPoint {
    pub step: i64,
    pub value: f64,
    pub timestamp_ms: i64,
}

/// Every point of one series at the given steps, by step then timestamp.
pub async fn points_at_steps(
    db: &Db,
    job: Uuid,
    key: &str,
    steps: &[i64],
) -> Result<Vec<LatestValue>, sqlx::Error> {
    let mut out = Vec::new();
    for chunk in steps.chunks(500) {
        let list = chunk
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "SELECT s.key, p.step, p.value, p.ts_ms FROM metric_series s
             JOIN metric_points p ON p.series_id = s.series_id WHERE s.job_id = $1 AND s.key = $2
             AND p.step IN ({list}) ORDER BY p.step, p.ts_ms, (p.value IS NOT NULL), p.value"
        );
        crate::on_pool!(db, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(job)
                .bind(key)
                .fetch_all(pool)
                .await?;
            for r in &rows {
                out.push(latest_of(r)?);
            }
        });
    }
    Ok(out)
}

/// One downsampled bucket of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub step: i64,
    pub last_step: i64,
    pub agg: Agg,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub key: String,
    pub buckets: Vec<Bucket>,
    /// Steps per bucket (1 when points are returned as logged).
    pub bucket_width: i64,
}

/// The smallest bucket width, a multiple of `unit`, that splits [from, to]
/// into at most `max_points` aligned buckets.
pub fn bucket_width(from: i64, to: i64, max_points: i64, unit: i64) -> i64 {
    let span = to - from + 1;
    let mut w = ((span + max_points - 1) / max_points).max(1);
    w = (w + unit - 1) / unit * unit;
    while to.div_euclid(w) - from.div_euclid(w) + 1 > max_points {
        w += unit;
    }
    w
}

/// The series of `key` between steps `from` and `to` (inclusive), in at most
/// `max_points` buckets.
pub async fn series(
    db: &Db,
    job: Uuid,
    key: &str,
    from: Option<i64>,
    to: Option<i64>,
    max_points: i64,
) -> Result<Series, sqlx::Error> {
    let max_points = max_points.max(1);
    let empty = Series {
        key: key.to_string(),
        buckets: vec![],
        bucket_width: 1,
    };
    let bounds_sql = concat!(
        "SELECT MIN(min_step), MAX(max_step) FROM metric_rollups WHERE ",
        series_of!(),
        " AND level = $3"
    );
    let (lo, hi): (Option<i64>, Option<i64>) = crate::on_pool!(db, |pool| {
        sqlx::query_as(bounds_sql)
            .bind(job)
            .bind(key)
            .bind(i64::from(LEVELS))
            .fetch_one(pool)
            .await?
    });
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(empty);
    };
    let from = from.unwrap_or(lo).max(lo).max(0);
    let to = to.unwrap_or(hi).min(hi);
    if from > to {
        return Ok(empty);
    }
    let raw_width = bucket_width(from, to, max_points, 1);
    let level = (1..=LEVELS)
        .rev()
        .find(|l| level_width(*l) <= raw_width)
        .unwrap_or(0);
    let unit = if level == 0 { 1 } else { level_width(level) };
    let width = bucket_width(from, to, max_points, unit);

    let mut out: std::collections::BTreeMap<i64, Agg> = std::collections::BTreeMap::new();
    let mut add = |step: i64, a: &Agg| {
        out.entry(step.div_euclid(width))
            .and_modify(|b| b.merge(a))
            .or_insert(*a);
    };
    // Whole rollup buckets inside [from, to]; raw points at the ragged edges.
    let (inner_a, inner_b) = if level == 0 {
        (to + 1, to + 1)
    } else {
        let a = (from + unit - 1).div_euclid(unit) * unit;
        let b = (to + 1).div_euclid(unit) * unit;
        if a < b { (a, b) } else { (to + 1, to + 1) }
    };
    if inner_a < inner_b {
        let sql = concat!(
            "SELECT bucket, ",
            rollup_cols!(),
            " FROM metric_rollups WHERE ",
            series_of!(),
            " AND level = $3 AND bucket >= $4 AND bucket < $5 ORDER BY bucket"
        );
        crate::on_pool!(db, |pool| {
            let rows = sqlx::query(sql)
                .bind(job)
                .bind(key)
                .bind(i64::from(level))
                .bind(inner_a / unit)
                .bind(inner_b / unit)
                .fetch_all(pool)
                .await?;
            for r in &rows {
                let a = agg_row(r)?;
                add(a.min_step, &a);
            }
        });
    }
    let raw_ranges = [(from, inner_a.min(to + 1)), (inner_b.max(from), to + 1)];
    for (a, b) in raw_ranges {
        if a >= b || (a == inner_a && b == inner_b) {
            continue;
        }
        let sql = concat!(
            "SELECT step, value FROM metric_points WHERE ",
            series_of!(),
            " AND step >= $3 AND step < $4 ORDER BY step"
        );
        crate::on_pool!(db, |pool| {
            let rows = sqlx::query(sql)
                .bind(job)
                .bind(key)
                .bind(a)
                .bind(b)
                .fetch_all(pool)
                .await?;
            for r in &rows {
                let step: i64 = r.try_get("step")?;
                add(step, &Agg::of(step, from_sql_f64(r.try_get("value")?)));
            }
        });
        if inner_a >= inner_b {
            break;
        }
    }
    let buckets = out
        .into_values()
        .map(|agg| Bucket {
            step: agg.min_step,
            last_step: agg.max_step,
            agg,
        })
        .collect();
    Ok(Series {
        key: key.to_string(),
        buckets,
        bucket_width: width,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agg_merges_like_a_direct_computation() {
        let values = [1.0, 5.0, f64::NAN, -2.0, 3.0];
        let mut a = Agg::of(0, values[0]);
        for (i, v) in values.iter().enumerate().skip(1) {
            a.merge(&Agg::of(i as i64, *v));
        }
        assert_eq!((a.n, a.nan_n, a.finite_n), (5, 1, 4));
        assert_eq!((a.min, a.max), (Some(-2.0), Some(5.0)));
        assert_eq!(a.mean(), (1.0 + 5.0 - 2.0 + 3.0) / 4.0);
        assert_eq!((a.last_step, a.last_value), (4, 3.0));
    }

    #[test]
    fn agg_mean_with_infinities() {
        let mut a = Agg::of(0, 1.0);
        a.merge(&Agg::of(1, f64::INFINITY));
        assert_eq!(a.mean(), f64::INFINITY);
        a.merge(&Agg::of(2, f64::NEG_INFINITY));
        assert!(a.mean().is_nan());
        assert!(Agg::of(0, f64::NAN).mean().is_nan());
        assert_eq!(Agg::of(0, f64::NAN).min, None);
    }

    #[test]
    fn bucket_width_respects_max_points_and_alignment() {
        for (from, to, m, unit) in [
            (0, 999_999, 1000, 512),
            (3, 10, 1000, 1),
            (17, 100_003, 7, 64),
            (0, 0, 1, 1),
        ] {
            let w = bucket_width(from, to, m, unit);
            assert_eq!(w % unit, 0);
            assert!(to / w - from / w < m, "{from}..{to} in {m} with width {w}");
        }
        assert_eq!(bucket_width(0, 9, 10, 1), 1);
    }
}
