use super::ops::owned_job;
use super::types::*;
use crate::graphql::common::parse_id;
use crate::graphql::common::scalars::MetricFloat;
use crate::graphql::common::{internal, state};
use async_graphql::{Context, ID, Subscription as GqlSubscription};
use ftl_domain::DomainEvent;
use ftl_domain::project::Scope;
use ftl_projections::views::catalog;
use futures::stream::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

#[derive(Default)]
pub struct Subscription;

#[GqlSubscription(name = "CoreSubscription")]
impl Subscription {
    /// The job now, then again after each status change (as projected); the
    /// stream completes after the job reaches a terminal state
    /// (`SUCCEEDED`, `FAILED`, `CANCELLED`), at once when it is already in
    /// one.
    async fn job_status(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Job>>> {
        let id = parse_id(&job_id, "jobId")?;
        let st = state(ctx)?.clone();
        // Listen first, then read: a change between the two is not missed.
        let feed = BroadcastStream::new(st.effects.feed.subscribe());
        let current = owned_job(ctx, id, Scope::Read).await?;
        let project = current.project_id;
        let first = futures::stream::once(async move { Ok(current) });
        let changes = feed.filter_map(move |item| {
            let st = st.clone();
            async move {
                let d = item.ok()?;
                let DomainEvent::Job(e) = &d.event else {
                    return None;
                };
                if e.job_id().0 != id {
                    return None;
                }
                st.effects
                    .projections
                    .wait_for(d.position, st.ryw_timeout())
                    .await;
                Some(
                    catalog::job(&st.effects.db, project, id)
                        .await
                        .map_err(internal)
                        .and_then(|j| {
                            j.ok_or_else(|| {
                                crate::graphql::common::gql_error(
                                    crate::graphql::common::Code::NotFound,
                                    "job not found",
                                )
                            })
                        }),
                )
            }
        });
        // Each status once, in order; the stream ends right after a terminal
        // one (or an error), without waiting for another event.
        let mut last: Option<String> = None;
        let statuses = first.chain(changes).filter(move |r| {
            let fresh = match r {
                Ok(j) => last.replace(j.status.clone()).as_deref() != Some(j.status.as_str()),
                Err(_) => true,
            };
            std::future::ready(fresh)
        });
        Ok(futures::stream::unfold(
            (Box::pin(statuses), false),
            |(mut rest, ended)| async move {
                if ended {
                    return None;
                }
                let r = rest.next().await?;
                let end = r.as_ref().map_or(true, |j| {
                    ftl_domain::job::JobStatus::parse(&j.status).is_some_and(|s| s.is_terminal())
                });
                Some((r.map(Job::from), (rest, end)))
            },
        ))
    }

    /// New metric points of a job as they are projected (optionally only some keys).
    async fn job_metrics(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
        keys: Option<Vec<String>>,
    ) -> async_graphql::Result<impl Stream<Item = MetricPointBatch>> {
        let id = parse_id(&job_id, "jobId")?;
        owned_job(ctx, id, Scope::Read).await?;
        let st = state(ctx)?.clone();
        Ok(
            BroadcastStream::new(st.effects.feed.subscribe()).filter_map(move |item| {
                let st = st.clone();
                let keys = keys.clone();
                async move {
                    let d = item.ok()?;
                    let DomainEvent::MetricsLogged(m) = &d.event else {
                        return None;
                    };
                    if m.job_id.0 != id {
                        return None;
                    }
                    st.effects
                        .projections
                        .wait_for(d.position, st.ryw_timeout())
                        .await;
                    let points: Vec<MetricPointOut> = m
                        .points
                        .iter()
                        .filter(|p| keys.as_ref().is_none_or(|k| k.contains(&p.key)))
                        .map(|p| MetricPointOut {
                            key: p.key.clone(),
                            step: p.step,
                            value: MetricFloat(p.value),
                            timestamp_ms: p.timestamp_ms,
                        })
                        .collect();
                    (!points.is_empty()).then(|| MetricPointBatch {
                        job_id: ID(id.to_string()),
                        position: d.position.to_string(),
                        points,
                    })
                }
            }),
        )
    }
}
