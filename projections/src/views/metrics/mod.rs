//! Metric points, multi-resolution rollups, and the latest value per key.
//!
//! Every point lands in `metric_points`. Rollups keep, per (series, level,
//! bucket) with buckets of 8^level steps, the count, NaN/±∞ counts, the sum
//! of finite values, min, max and the last value. A series query picks the
//! coarsest level finer than the requested resolution, so it reads at most
//! ~8 × maxPoints rows whatever the series length, and min/max per bucket
//! keep a single-step spike visible after downsampling.

/// The aggregate columns of `metric_rollups`, in `Agg` order.
macro_rules! rollup_cols {
    () => {
        "n, nan_n, pinf_n, ninf_n, finite_n, vsum, vmin, vmax, min_step, max_step, last_step, last_value"
    };
}

mod read;
mod write;

pub use read::*;

use super::types;
use crate::DbTx;
use crate::runner::{Decoded, Projection, ProjectionError};
use async_trait::async_trait;
use ftl_domain::DomainEvent;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use uuid::Uuid;
use write::{insert_points, load_rollups, newer, series_ids, upsert_latest, upsert_rollups};

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

#[cfg(test)]
mod tests;
