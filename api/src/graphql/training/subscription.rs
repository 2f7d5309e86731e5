//! Subscriptions of managed training: a job's progress and logs, live.

use super::*;

#[derive(Default)]
pub struct TrainingSubscription;

#[GqlSubscription]
impl TrainingSubscription {
    /// New log lines of a job as they arrive (at `level` or above).
    async fn job_log_lines(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
        level: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = LogLine>> {
        let id = parse_id(&job_id, "jobId")?;
        owned_job(ctx, id, Scope::Read).await?;
        let min = parse_level(level.as_deref())?.unwrap_or(0);
        let st = state(ctx)?.clone();
        Ok(BroadcastStream::new(st.effects.feed.subscribe())
            .filter_map(move |item| {
                let lines: Vec<LogLine> = match item {
                    Ok(d) => match &d.event {
                        DomainEvent::LogsAppended(l) if l.job_id.0 == id => l
                            .lines
                            .iter()
                            .enumerate()
                            .filter(|(_, line)| line.level as i64 >= min)
                            .map(|(i, line)| LogLine {
                                cursor: format!("{}:{i}", d.position),
                                timestamp: Utc
                                    .timestamp_millis_opt(line.timestamp_ms)
                                    .single()
                                    .unwrap_or_default(),
                                level: line.level.as_str().into(),
                                source: line.source.clone(),
                                message: line.message.clone(),
                            })
                            .collect(),
                        _ => vec![],
                    },
                    Err(_) => vec![],
                };
                async move { Some(futures::stream::iter(lines)) }
            })
            .flatten())
    }

    /// Budget alerts (50/80/100 % by default) of a job: those already
    /// crossed, then each as it is crossed. Read back from the read model
    /// (also after the change feed dropped events for a slow subscriber),
    /// so none is missed or repeated.
    async fn budget_alerts(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = BudgetAlert>> {
        let id = parse_id(&job_id, "jobId")?;
        owned_job(ctx, id, Scope::Read).await?;
        let st = state(ctx)?.clone();
        let last = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(-1));
        let changes = BroadcastStream::new(st.effects.feed.subscribe()).map(Some);
        // One read at subscription, then one per relevant event (or lag).
        Ok(futures::stream::once(async { None })
            .chain(changes)
            .filter_map(move |item| {
                let st = st.clone();
                let last = last.clone();
                async move {
                    let wait_for = match &item {
                        None => None,
                        Some(Err(_)) => None,
                        Some(Ok(d)) => match &d.event {
                            DomainEvent::Job(ftl_domain::job::JobEvent::Managed(
                                ftl_domain::job::ManagedEvent::BudgetThresholdCrossed(b),
                            )) if b.job_id.0 == id => Some(d.position),
                            _ => return None,
                        },
                    };
                    if let Some(position) = wait_for {
                        st.effects
                            .projections
                            .wait_for(position, st.ryw_timeout())
                            .await;
                    }
                    let alerts = training::budget_alerts(&st.effects.db, id).await.ok()?;
                    let seen = last.load(std::sync::atomic::Ordering::SeqCst);
                    let new: Vec<BudgetAlert> = alerts
                        .into_iter()
                        .filter(|a| a.position > seen)
                        .map(|a| {
                            last.fetch_max(a.position, std::sync::atomic::Ordering::SeqCst);
                            BudgetAlert {
                                percent: a.percent,
                                spent_usd: a.spent_usd,
                                max_cost_usd: a.max_cost_usd,
                                at: a.at,
                            }
                        })
                        .collect();
                    Some(futures::stream::iter(new))
                }
            })
            .flatten())
    }
}
