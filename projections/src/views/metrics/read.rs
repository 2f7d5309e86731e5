//! Reading metrics: the latest value per key, a series' full history or
//! its points at given steps, and a downsampled series from the rollups.

use super::write::agg_row;
use super::{Agg, LEVELS, level_width};
use crate::views::from_sql_f64;
use ftl_commands::Db;
use sqlx::Row;
use uuid::Uuid;

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
