//! Metric points, multi-resolution rollups, and the latest value per key.
//!
//! Every point lands in `metric_points`. Rollups keep, per (job, key, level,
//! bucket) with buckets of 8^level steps, the count, NaN/±∞ counts, the sum
//! of finite values, min, max and the last value. A series query picks the
//! coarsest level finer than the requested resolution, so it reads at most
//! ~8 × maxPoints rows whatever the series length, and min/max per bucket
//! keep a single-step spike visible after downsampling.

use super::{from_sql_f64, sqlite_values, to_sql_f64, types};
use crate::runner::{Decoded, Projection, ProjectionError};
use crate::{DbTx, execute};
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

/// (job, key, level, bucket)
type RollupKey<'a> = (Uuid, &'a str, u32, i64);

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
        &["metric_points", "metric_rollups", "metric_latest"]
    }

    fn ddl(&self, postgres: bool, s: &str) -> String {
        let t = types(postgres);
        let (u, f) = (t.uuid, t.float);
        format!(
            "CREATE TABLE IF NOT EXISTS metric_points{s} (
                job_id {u} NOT NULL, key TEXT NOT NULL, step BIGINT NOT NULL, value {f}, ts_ms BIGINT NOT NULL);
             CREATE INDEX IF NOT EXISTS metric_points{s}_series ON metric_points{s} (job_id, key, step);
             CREATE TABLE IF NOT EXISTS metric_rollups{s} (
                job_id {u} NOT NULL, key TEXT NOT NULL, level BIGINT NOT NULL, bucket BIGINT NOT NULL,
                n BIGINT NOT NULL, nan_n BIGINT NOT NULL, pinf_n BIGINT NOT NULL, ninf_n BIGINT NOT NULL,
                finite_n BIGINT NOT NULL, vsum {f} NOT NULL, vmin {f}, vmax {f},
                min_step BIGINT NOT NULL, max_step BIGINT NOT NULL, last_step BIGINT NOT NULL, last_value {f},
                PRIMARY KEY (job_id, key, level, bucket));
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
        let mut rows: Vec<(Uuid, &str, i64, f64, i64)> = Vec::new();
        let mut touched: HashSet<RollupKey<'_>> = HashSet::default();
        let mut names: HashSet<&str> = HashSet::default();
        for d in events {
            let DomainEvent::MetricsLogged(m) = &d.event else {
                continue;
            };
            let job = m.job_id.0;
            for p in &m.points {
                rows.push((job, p.key.as_str(), p.step, p.value, p.timestamp_ms));
                names.insert(p.key.as_str());
                for level in 1..=LEVELS {
                    touched.insert((job, p.key.as_str(), level, p.step / level_width(level)));
                }
                let e = latest.entry((job, p.key.as_str())).or_insert((
                    p.step,
                    p.value,
                    p.timestamp_ms,
                ));
                if newer(p.step, p.timestamp_ms, p.value, e) {
                    *e = (p.step, p.value, p.timestamp_ms);
                }
            }
        }
        // Rollups fold every point into the stored aggregate one by one, in
        // log order, so the float operations are the same whatever the batch
        // boundaries: a rebuild yields bit-identical sums. Each touched row is
        // read once and written once per batch.
        let mut rollups = load_rollups(tx, s, &touched, &names).await?;
        for d in events {
            let DomainEvent::MetricsLogged(m) = &d.event else {
                continue;
            };
            for p in &m.points {
                let point = Agg::of(p.step, p.value);
                for level in 1..=LEVELS {
                    let bucket = p.step / level_width(level);
                    rollups
                        .entry((m.job_id.0, p.key.as_str(), level, bucket))
                        .and_modify(|a| a.merge(&point))
                        .or_insert(point);
                }
            }
        }
        insert_points(tx, s, &rows).await?;
        upsert_rollups(tx, s, &rollups).await?;
        upsert_latest(tx, s, &latest).await?;
        Ok(())
    }
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

/// A loaded rollup row: its key (name borrowed back from `names`) and aggregate.
fn rollup_entry<'a, R: Row>(
    r: &R,
    names: &HashSet<&'a str>,
) -> Result<Option<(RollupKey<'a>, Agg)>, sqlx::Error>
where
    for<'b> Uuid: sqlx::Decode<'b, R::Database> + sqlx::Type<R::Database>,
    for<'b> String: sqlx::Decode<'b, R::Database> + sqlx::Type<R::Database>,
    for<'b> i64: sqlx::Decode<'b, R::Database> + sqlx::Type<R::Database>,
    for<'b> f64: sqlx::Decode<'b, R::Database> + sqlx::Type<R::Database>,
    for<'b> &'b str: sqlx::ColumnIndex<R>,
{
    let name: String = r.try_get("key")?;
    let Some(key) = names.get(name.as_str()) else {
        return Ok(None);
    };
    let level = u32::try_from(r.try_get::<i64, _>("level")?).unwrap_or(0);
    let job: Uuid = r.try_get("job_id")?;
    let bucket: i64 = r.try_get("bucket")?;
    Ok(Some(((job, *key, level, bucket), agg_row(r)?)))
}

/// The aggregate columns of `metric_rollups`, in `Agg` order.
macro_rules! rollup_cols {
    () => {
        "n, nan_n, pinf_n, ninf_n, finite_n, vsum, vmin, vmax, min_step, max_step, last_step, last_value"
    };
}
const ROLLUP_COLS: &str = rollup_cols!();

/// The stored aggregates of the touched rollup rows, keyed by the caller's
/// borrowed keys (`names` maps a loaded key name back to its borrow).
async fn load_rollups<'a>(
    tx: &mut DbTx,
    s: &str,
    touched: &HashSet<RollupKey<'a>>,
    names: &HashSet<&'a str>,
) -> Result<HashMap<RollupKey<'a>, Agg>, sqlx::Error> {
    let keys: Vec<&RollupKey<'a>> = touched.iter().collect();
    let mut out = HashMap::with_capacity_and_hasher(keys.len(), Default::default());
    match tx {
        // The keys as a CTE, one primary-key probe each. CROSS JOIN pins the
        // loop order in SQLite: left to itself the planner scanned the whole
        // rollup table per batch (ingestion slowed as the table grew).
        DbTx::Sqlite(t) => {
            for chunk in keys.chunks(ROLLUP_ROWS) {
                let sql = format!(
                    "WITH k(job_id, key, level, bucket) AS (VALUES {})
                     SELECT r.job_id, r.key, r.level, r.bucket, {ROLLUP_COLS} FROM k
                     CROSS JOIN metric_rollups{s} r
                     WHERE r.job_id = k.job_id AND r.key = k.key AND r.level = k.level AND r.bucket = k.bucket",
                    sqlite_values(chunk.len(), 4)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (job, key, level, bucket) in chunk {
                    q = q
                        .bind(*job)
                        .bind(*key)
                        .bind(i64::from(*level))
                        .bind(*bucket);
                }
                for r in q.fetch_all(&mut **t).await? {
                    out.extend(rollup_entry(&r, names)?);
                }
            }
        }
        // One statement with the keys as arrays, whatever their number.
        DbTx::Postgres(t) => {
            let sql = format!(
                "SELECT r.job_id, r.key, r.level, r.bucket, {ROLLUP_COLS}
                 FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::int8[]) AS k(job_id, key, level, bucket)
                 JOIN metric_rollups{s} r ON r.job_id = k.job_id AND r.key = k.key AND r.level = k.level AND r.bucket = k.bucket"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
                .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
                .bind(keys.iter().map(|k| i64::from(k.2)).collect::<Vec<_>>())
                .bind(keys.iter().map(|k| k.3).collect::<Vec<_>>())
                .fetch_all(&mut **t)
                .await?;
            for r in rows {
                out.extend(rollup_entry(&r, names)?);
            }
        }
    }
    Ok(out)
}

/// Rows per statement, within SQLite's 32,766 bound variables.
const POINT_ROWS: usize = 6000;
const ROLLUP_ROWS: usize = 2000;

async fn insert_points(
    tx: &mut DbTx,
    s: &str,
    rows: &[(Uuid, &str, i64, f64, i64)],
) -> Result<(), sqlx::Error> {
    match tx {
        DbTx::Sqlite(t) => {
            for chunk in rows.chunks(POINT_ROWS) {
                let sql = format!(
                    "INSERT INTO metric_points{s} (job_id, key, step, value, ts_ms) VALUES {}",
                    sqlite_values(chunk.len(), 5)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (job, key, step, value, ts) in chunk {
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
                "INSERT INTO metric_points{s} (job_id, key, step, value, ts_ms)
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::float8[], $5::int8[])"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| to_sql_f64(r.3)).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.4).collect::<Vec<_>>())
                .execute(&mut **t)
                .await?;
        }
    }
    Ok(())
}

async fn upsert_rollups(
    tx: &mut DbTx,
    s: &str,
    rollups: &HashMap<RollupKey<'_>, Agg>,
) -> Result<(), sqlx::Error> {
    let entries: Vec<(&RollupKey<'_>, &Agg)> = rollups.iter().collect();
    let t = format!("metric_rollups{s}");
    let set = ROLLUP_COLS
        .split(", ")
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let head = format!("INSERT INTO {t} (job_id, key, level, bucket, {ROLLUP_COLS})");
    let tail = format!("ON CONFLICT (job_id, key, level, bucket) DO UPDATE SET {set}");
    match tx {
        DbTx::Sqlite(tx) => {
            for chunk in entries.chunks(ROLLUP_ROWS) {
                let sql = format!("{head} VALUES {} {tail}", sqlite_values(chunk.len(), 16));
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for ((job, key, level, bucket), a) in chunk {
                    q = q
                        .bind(*job)
                        .bind(*key)
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
                "{head} SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[],
                    $7::int8[], $8::int8[], $9::int8[], $10::float8[], $11::float8[], $12::float8[], $13::int8[],
                    $14::int8[], $15::int8[], $16::float8[]) {tail}"
            );
            let col = |f: fn(&Agg) -> i64| entries.iter().map(|(_, a)| f(a)).collect::<Vec<_>>();
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(entries.iter().map(|(k, _)| k.0).collect::<Vec<_>>())
                .bind(entries.iter().map(|(k, _)| k.1).collect::<Vec<_>>())
                .bind(
                    entries
                        .iter()
                        .map(|(k, _)| i64::from(k.2))
                        .collect::<Vec<_>>(),
                )
                .bind(entries.iter().map(|(k, _)| k.3).collect::<Vec<_>>())
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

async fn upsert_latest(
    tx: &mut DbTx,
    s: &str,
    latest: &HashMap<(Uuid, &str), (i64, f64, i64)>,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO metric_latest{s} (job_id, key, step, value, ts_ms) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (job_id, key) DO UPDATE SET step = excluded.step, value = excluded.value, ts_ms = excluded.ts_ms
         WHERE excluded.step > metric_latest{s}.step
            OR (excluded.step = metric_latest{s}.step AND (excluded.ts_ms > metric_latest{s}.ts_ms
                OR (excluded.ts_ms = metric_latest{s}.ts_ms AND excluded.value > metric_latest{s}.value)))"
    );
    for ((job, key), (step, value, ts)) in latest {
        execute!(tx, sql.clone(), *job, *key, *step, to_sql_f64(*value), *ts)?;
    }
    Ok(())
}

// ---- queries -------------------------------------------------------------

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
) -> Result<Vec<LatestValue>, sqlx::Error> {
    let sql = "SELECT key, step, value, ts_ms FROM metric_points WHERE job_id = $1 AND key = $2
               ORDER BY ts_ms, step, (value IS NOT NULL), value LIMIT $3 OFFSET $4";
    crate::on_pool!(db, |pool| {
        let rows = sqlx::query(sql)
            .bind(job)
            .bind(key)
            .bind(limit.unwrap_or(i64::MAX))
            .bind(offset)
            .fetch_all(pool)
            .await?;
        rows.iter().map(latest_of).collect()
    })
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
            "SELECT key, step, value, ts_ms FROM metric_points WHERE job_id = $1 AND key = $2
             AND step IN ({list}) ORDER BY step, ts_ms, (value IS NOT NULL), value"
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
    let bounds_sql = "SELECT MIN(min_step), MAX(max_step) FROM metric_rollups WHERE job_id = $1 AND key = $2 AND level = $3";
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
            " FROM metric_rollups
             WHERE job_id = $1 AND key = $2 AND level = $3 AND bucket >= $4 AND bucket < $5 ORDER BY bucket"
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
        let sql = "SELECT step, value FROM metric_points WHERE job_id = $1 AND key = $2 AND step >= $3 AND step < $4
                   ORDER BY step";
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
