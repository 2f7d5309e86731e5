//! "As of" a log position for jobs and their metrics (`job`, `jobs`,
//! `metricSeries` take `asOf`): the events up to the position are folded by
//! the projections' own code into an in-memory read model
//! (`ftl_projections::replay`), and the same views answer from it. A job
//! read as of a position carries it (`asOf`), and what is nested under it
//! (`latestMetrics`, `training`) is read as of the same position.

use super::errors::{Code, gql_error, internal};
use crate::AppState;
use ftl_commands::store::{RecordedEvent, read_full_stream};
use ftl_domain::ids::JobId;
use ftl_projections::ProjectionError;
use ftl_projections::replay::{Replay, read_until};
use ftl_projections::views::catalog::CatalogProjection;
use ftl_projections::views::metrics::MetricsProjection;
use ftl_projections::views::training::TrainingProjection;
use uuid::Uuid;

/// The metric batches' type: the listing reads pass over their payloads.
const METRICS_LOGGED: &str = "job.metrics_logged";

/// `asOf` as a log position: a number no later than the log's head.
pub async fn position(st: &AppState, as_of: Option<&str>) -> async_graphql::Result<Option<u64>> {
    let Some(text) = as_of else {
        return Ok(None);
    };
    let p: u64 = text
        .parse()
        .map_err(|_| gql_error(Code::InvalidInput, "asOf must be a log position"))?;
    let head = st.effects.store.head_position().await.map_err(internal)?;
    if p > head {
        return Err(gql_error(
            Code::InvalidInput,
            format!("asOf {p} is past the log's head ({head})"),
        ));
    }
    Ok(Some(p))
}

fn fold_error(e: ProjectionError) -> async_graphql::Error {
    match e {
        ProjectionError::Limit(m) => gql_error(Code::LimitExceeded, m),
        other => internal(other),
    }
}

async fn job_events(st: &AppState, job: Uuid) -> async_graphql::Result<Vec<RecordedEvent>> {
    let job = JobId(job);
    let mut events = read_full_stream(st.effects.store.as_ref(), &job.stream())
        .await
        .map_err(internal)?;
    events.extend(
        read_full_stream(st.effects.store.as_ref(), &job.metrics_stream())
            .await
            .map_err(internal)?,
    );
    Ok(events)
}

/// One job's read models (catalog row, managed training, metrics) at `at`.
pub async fn job(st: &AppState, job: Uuid, at: u64) -> async_graphql::Result<Replay> {
    let events = job_events(st, job).await?;
    let mut r = Replay::new(at).await.map_err(fold_error)?;
    for p in [
        &CatalogProjection as &dyn ftl_projections::Projection,
        &TrainingProjection,
        &MetricsProjection,
    ] {
        r.apply(p, &events).await.map_err(fold_error)?;
    }
    Ok(r)
}

/// Every job's catalog row and managed-training facts at `at` (metrics are
/// added per job with [`add_metrics`], for the jobs a page shows).
pub async fn jobs(st: &AppState, at: u64) -> async_graphql::Result<Replay> {
    let (catalog, training) = (CatalogProjection, TrainingProjection);
    use ftl_projections::Projection;
    let events = read_until(st.effects.store.as_ref(), at, &[METRICS_LOGGED], |e| {
        catalog.handles(&e.event_type) || training.handles(&e.event_type)
    })
    .await
    .map_err(fold_error)?;
    let mut r = Replay::new(at).await.map_err(fold_error)?;
    r.apply(&catalog, &events).await.map_err(fold_error)?;
    r.apply(&training, &events).await.map_err(fold_error)?;
    Ok(r)
}

/// Folds the metrics of `jobs` into `r`.
pub async fn add_metrics(
    st: &AppState,
    r: &mut Replay,
    jobs: &[Uuid],
) -> async_graphql::Result<()> {
    for job in jobs {
        let events = job_events(st, *job).await?;
        r.apply(&MetricsProjection, &events)
            .await
            .map_err(fold_error)?;
    }
    Ok(())
}
