use super::query::{owned_job, parse_id};
use super::scalars::MetricFloat;
use super::types::*;
use super::{errors::internal, state};
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
    /// The job now, then again after each status change (as projected).
    async fn job_status(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Job>>> {
        let id = parse_id(&job_id, "jobId")?;
        let current = owned_job(ctx, id, Scope::Read).await?;
        let st = state(ctx)?.clone();
        let project = current.project_id;
        let changes = BroadcastStream::new(st.feed.subscribe()).filter_map(move |item| {
            let st = st.clone();
            async move {
                let d = item.ok()?;
                let DomainEvent::Job(e) = &d.event else {
                    return None;
                };
                if e.job_id().0 != id {
                    return None;
                }
                st.projections.wait_for(d.position, st.ryw_timeout()).await;
                Some(
                    catalog::job(&st.db, project, id)
                        .await
                        .map_err(internal)
                        .and_then(|j| {
                            j.map(Job::from).ok_or_else(|| {
                                super::gql_error(super::Code::NotFound, "job not found")
                            })
                        }),
                )
            }
        });
        Ok(futures::stream::once(async move { Ok(Job::from(current)) }).chain(changes))
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
            BroadcastStream::new(st.feed.subscribe()).filter_map(move |item| {
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
                    st.projections.wait_for(d.position, st.ryw_timeout()).await;
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
