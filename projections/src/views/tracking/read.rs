//! Reading experiments and runs: a project's experiments with their tags,
//! runs with as much of their params, tags and latest metrics as a search
//! needs, and a page of runs by start time.

use crate::views::metrics::{LatestValue, latest_of};
use ftl_commands::Db;
use sqlx::{FromRow, Row};
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ExperimentRow {
    pub experiment_id: i64,
    pub name: String,
    pub lifecycle: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    #[sqlx(skip)]
    pub tags: Vec<(String, String)>,
}

/// Every experiment of a project, by id, with its tags.
pub async fn experiments(db: &Db, project: Uuid) -> Result<Vec<ExperimentRow>, sqlx::Error> {
    let sql = "SELECT experiment_id, name, lifecycle, created_ms, updated_ms FROM experiments
               WHERE project_id = $1 ORDER BY experiment_id";
    let tags_sql = "SELECT experiment_id, key, value FROM experiment_tags WHERE project_id = $1
                    ORDER BY experiment_id, key";
    let mut tags: HashMap<i64, Vec<(String, String)>> = HashMap::new();
    for (id, key, value) in crate::fetch!(db, fetch_all, (i64, String, String), tags_sql, project)?
    {
        tags.entry(id).or_default().push((key, value));
    }
    let mut out = crate::fetch!(db, fetch_all, ExperimentRow, sql, project)?;
    for e in &mut out {
        e.tags = tags.remove(&e.experiment_id).unwrap_or_default();
    }
    Ok(out)
}

/// One experiment by id or by name.
pub async fn experiment(
    db: &Db,
    project: Uuid,
    id: Option<i64>,
    name: Option<&str>,
) -> Result<Option<ExperimentRow>, sqlx::Error> {
    // Projects have few experiments: one listing answers both lookups.
    Ok(experiments(db, project)
        .await?
        .into_iter()
        .find(|e| id.is_none_or(|i| e.experiment_id == i) && name.is_none_or(|n| e.name == n)))
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RunRow {
    pub job_id: Uuid,
    pub project_id: Uuid,
    pub experiment_id: i64,
    pub name: String,
    /// The job's status (`catalog`).
    pub status: String,
    pub user_id: String,
    pub start_time_ms: i64,
    pub end_time_ms: Option<i64>,
    pub deleted: bool,
    #[sqlx(skip)]
    pub params: Vec<(String, String)>,
    #[sqlx(skip)]
    pub tags: Vec<(String, String)>,
    #[sqlx(skip)]
    pub metrics: Vec<LatestValue>,
}

/// Which runs to load.
#[derive(Debug, Clone, Copy)]
pub enum RunScope<'a> {
    Experiments(&'a [i64]),
    /// These runs, in no particular order.
    Jobs(&'a [Uuid]),
}

/// Which params, tags or latest metric values to load with each run.
#[derive(Debug, Clone, Copy)]
pub enum Keys<'a> {
    All,
    /// Only these keys (none: the run alone).
    Only(&'a [String]),
}

/// What to load with each run: a search that filters or sorts on a few keys
/// reads those for every candidate, and everything for its page only.
#[derive(Debug, Clone, Copy)]
pub struct RunDetail<'a> {
    pub params: Keys<'a>,
    pub tags: Keys<'a>,
    pub metrics: Keys<'a>,
}

impl RunDetail<'_> {
    pub const ALL: RunDetail<'static> = RunDetail {
        params: Keys::All,
        tags: Keys::All,
        metrics: Keys::All,
    };
}

/// Runs named in one statement (SQLite binds at most 32,766 values).
const JOBS_PER_QUERY: usize = 500;

/// Runs of a project with their params, tags and latest metric values, as
/// much of them as `detail` asks for.
pub async fn runs(
    db: &Db,
    project: Uuid,
    scope: RunScope<'_>,
    detail: RunDetail<'_>,
) -> Result<Vec<RunRow>, sqlx::Error> {
    match scope {
        RunScope::Jobs(ids) if ids.len() > JOBS_PER_QUERY => {
            let mut out = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(JOBS_PER_QUERY) {
                out.extend(runs_in(db, project, RunScope::Jobs(chunk), detail).await?);
            }
            Ok(out)
        }
        _ => runs_in(db, project, scope, detail).await,
    }
}

/// Which lifecycle stages a listing shows (MLflow's view types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Active,
    Deleted,
    All,
}

impl Lifecycle {
    pub fn admits(self, deleted: bool) -> bool {
        match self {
            Lifecycle::Active => !deleted,
            Lifecycle::Deleted => deleted,
            Lifecycle::All => true,
        }
    }
}

/// A page of runs of the given experiments in start-time order (`newest`
/// first or last), ties broken by run id (its bytes, as its hex sorts), read
/// with the page's `LIMIT` in SQL: the unfiltered listing costs the page,
/// not the experiment. Returns the page's run ids in order, and whether more
/// follow.
pub async fn runs_by_start(
    db: &Db,
    project: Uuid,
    experiments: &[i64],
    lifecycle: Lifecycle,
    newest: bool,
    offset: usize,
    limit: usize,
) -> Result<(Vec<Uuid>, bool), sqlx::Error> {
    if experiments.is_empty() || limit == 0 {
        return Ok((vec![], false));
    }
    let stage = match lifecycle {
        Lifecycle::Active => " AND NOT r.deleted",
        Lifecycle::Deleted => " AND r.deleted",
        Lifecycle::All => "",
    };
    let sql = format!(
        "SELECT r.job_id FROM runs r WHERE r.project_id = $1 AND r.experiment_id IN ({}){stage}
         ORDER BY r.start_time_ms {}, r.job_id LIMIT $2 OFFSET $3",
        experiments
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(","),
        if newest { "DESC" } else { "ASC" },
    );
    let mut ids: Vec<Uuid> = crate::on_pool!(db, |pool| {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?
    });
    let more = ids.len() > limit;
    ids.truncate(limit);
    Ok((ids, more))
}

/// `$from, $from+1, …` for `n` values.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

async fn runs_in(
    db: &Db,
    project: Uuid,
    scope: RunScope<'_>,
    detail: RunDetail<'_>,
) -> Result<Vec<RunRow>, sqlx::Error> {
    // Runs named by id are found by their key and checked against the
    // project here: with the project in the WHERE, SQLite's planner walks
    // the project's index over every run it has instead. The SQL binds the
    // project ($1) or the ids ($1…), then a detail query's keys.
    let jobs: &[Uuid] = match scope {
        RunScope::Jobs(ids) => ids,
        RunScope::Experiments(_) => &[],
    };
    let (runs_where, detail_where, first_key) = match scope {
        RunScope::Experiments([]) | RunScope::Jobs([]) => return Ok(vec![]),
        RunScope::Jobs(_) => {
            let ids = placeholders(1, jobs.len());
            (
                format!("r.job_id IN ({ids})"),
                format!("t.job_id IN ({ids})"),
                1 + jobs.len(),
            )
        }
        RunScope::Experiments(ids) => {
            let experiments = format!(
                "r.project_id = $1 AND r.experiment_id IN ({})",
                ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
            );
            (
                experiments.clone(),
                format!("t.job_id IN (SELECT r.job_id FROM runs r WHERE {experiments})"),
                2,
            )
        }
    };
    let runs_sql = format!(
        "SELECT r.job_id, r.project_id, r.experiment_id, j.name, j.status, r.user_id, r.start_time_ms, r.end_time_ms, r.deleted
         FROM runs r JOIN jobs j ON j.job_id = r.job_id WHERE {runs_where}"
    );
    // A detail query, or none where no key is wanted.
    let detail_sql = |select: &str, table: &str, keys: Keys<'_>| -> Option<(String, Vec<String>)> {
        let (only, keys) = match keys {
            Keys::All => (String::new(), vec![]),
            Keys::Only([]) => return None,
            Keys::Only(k) => (
                format!(" AND t.key IN ({})", placeholders(first_key, k.len())),
                k.to_vec(),
            ),
        };
        Some((
            format!("SELECT {select} FROM {table} t WHERE {detail_where}{only} ORDER BY t.key"),
            keys,
        ))
    };
    let params_sql = detail_sql("t.job_id, t.key, t.value", "run_params", detail.params);
    let tags_sql = detail_sql("t.job_id, t.key, t.value", "run_tags", detail.tags);
    let latest_sql = detail_sql(
        "t.job_id, t.key, t.step, t.value, t.ts_ms",
        "metric_latest",
        detail.metrics,
    );
    crate::on_pool!(db, |pool| {
        let q = |sql: String, keys: Vec<String>| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            if jobs.is_empty() {
                q = q.bind(project);
            }
            for j in jobs {
                q = q.bind(*j);
            }
            for k in keys {
                q = q.bind(k);
            }
            q
        };
        let kv = |rows: Vec<_>| -> Result<HashMap<Uuid, Vec<(String, String)>>, sqlx::Error> {
            let mut out: HashMap<Uuid, Vec<(String, String)>> = HashMap::new();
            for r in &rows {
                let (job, key, value): (Uuid, String, String) = FromRow::from_row(r)?;
                out.entry(job).or_default().push((key, value));
            }
            Ok(out)
        };
        let mut params = match params_sql {
            Some((sql, keys)) => kv(q(sql, keys).fetch_all(pool).await?)?,
            None => HashMap::new(),
        };
        let mut tags = match tags_sql {
            Some((sql, keys)) => kv(q(sql, keys).fetch_all(pool).await?)?,
            None => HashMap::new(),
        };
        let mut latest: HashMap<Uuid, Vec<LatestValue>> = HashMap::new();
        if let Some((sql, keys)) = latest_sql {
            for r in q(sql, keys).fetch_all(pool).await? {
                latest
                    .entry(Row::try_get(&r, "job_id")?)
                    .or_default()
                    .push(latest_of(&r)?);
            }
        }
        let mut out = Vec::new();
        for r in q(runs_sql, vec![]).fetch_all(pool).await? {
            let mut run = RunRow::from_row(&r)?;
            if run.project_id != project {
                continue;
            }
            run.params = params.remove(&run.job_id).unwrap_or_default();
            run.tags = tags.remove(&run.job_id).unwrap_or_default();
            run.metrics = latest.remove(&run.job_id).unwrap_or_default();
            out.push(run);
        }
        Ok(out)
    })
}
