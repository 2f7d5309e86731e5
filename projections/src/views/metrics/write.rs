//! Writing a batch of points: series ids, the points themselves, the
//! touched rollup rows (read, merged, upserted) and the latest value per key.

use super::{Agg, PointRow, RollupKey};
use crate::DbTx;
use crate::views::{from_sql_f64, sqlite_values, to_sql_f64};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use sqlx::Row;
use std::cmp::Ordering;
use uuid::Uuid;

/// Rows per statement, within SQLite's 32,766 bound variables.
const SERIES_ROWS: usize = 10_000;
const POINT_ROWS: usize = 5_000;
const ROLLUP_ROWS: usize = 2_000;

/// The ids of the given series, in the same order; series seen for the first
/// time get the next free ids, in that order.
pub(super) async fn series_ids(
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

/// An `Agg` from the aggregate columns of a rollup row (either backend).
pub(super) fn agg_row<R: Row>(r: &R) -> Result<Agg, sqlx::Error>
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

const ROLLUP_COLS: &str = rollup_cols!();

/// The stored aggregates of the touched rollup rows.
pub(super) async fn load_rollups(
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

pub(super) async fn insert_points(
    tx: &mut DbTx,
    s: &str,
    rows: &[PointRow],
) -> Result<(), sqlx::Error> {
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

pub(super) async fn upsert_rollups(
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
pub(super) fn newer(step: i64, ts: i64, value: f64, cur: &(i64, f64, i64)) -> bool {
    (step, ts) > (cur.0, cur.2)
        || ((step, ts) == (cur.0, cur.2) && value.partial_cmp(&cur.1) == Some(Ordering::Greater))
}

/// Rows per `metric_latest` upsert (5 parameters each).
const LATEST_ROWS: usize = 5_000;

pub(super) async fn upsert_latest(
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
