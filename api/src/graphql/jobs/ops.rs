//! The job operations the jobs and training resolvers share: a job of the
//! caller's project, and a command on a job's stream read back once the
//! read models show it.

use crate::auth::Caller;
use crate::graphql::common::{
    Code, Keyed, caller, command_error, gql_error, internal, keyed, parse_id, state,
};
use crate::graphql::jobs::Job;
use crate::state::AppState;
use async_graphql::{Context, ID};
use ftl_commands::handler::handle;
use ftl_domain::ids::JobId;
use ftl_domain::job::{JobCommand, JobDecider, in_project};
use ftl_domain::project::Scope;
use ftl_projections::views::catalog;
use uuid::Uuid;

/// The job if it exists in the caller's project; NOT_FOUND otherwise, so
/// another project's job ids are indistinguishable from unknown ones.
pub(crate) async fn owned_job(
    ctx: &Context<'_>,
    id: Uuid,
    needed: Scope,
) -> async_graphql::Result<catalog::JobRow> {
    let c = caller(ctx, needed)?;
    let st = state(ctx)?;
    catalog::job(&st.effects.db, c.project_id.0, id)
        .await
        .map_err(internal)?
        .ok_or_else(|| gql_error(Code::NotFound, "job not found"))
}

/// Waits until the read models show `position`, then reads the job back.
async fn job_after(
    st: &AppState,
    c: &Caller,
    job: Uuid,
    position: u64,
) -> async_graphql::Result<Job> {
    if !st
        .effects
        .projections
        .wait_for(position, st.ryw_timeout())
        .await
    {
        tracing::warn!(position, "read models did not catch up in time");
    }
    catalog::job(&st.effects.db, c.project_id.0, job)
        .await
        .map_err(internal)?
        .map(Job::from)
        .ok_or_else(|| {
            gql_error(
                Code::Internal,
                "the job is not readable yet; retry the query",
            )
        })
}

/// Creates a job (a new stream) and reads it back once projected.
pub(crate) async fn create(
    st: &AppState,
    c: &Caller,
    job: JobId,
    cmd: &JobCommand,
    keyed: &Keyed,
) -> async_graphql::Result<Job> {
    let handled = handle::<JobDecider>(
        st.effects.store.as_ref(),
        &job.stream(),
        cmd,
        keyed.id,
        &keyed.meta,
        |_| Ok(()),
    )
    .await
    .map_err(command_error)?;
    job_after(st, c, job.0, handled.position()).await
}

pub(crate) async fn transition(
    ctx: &Context<'_>,
    id: ID,
    cmd: JobCommand,
    op: &str,
    key: Option<String>,
) -> async_graphql::Result<Job> {
    let c = caller(ctx, Scope::Write)?;
    let st = state(ctx)?;
    let job = JobId(parse_id(&id, "id")?);
    let k = keyed(ctx, c, op, &job.to_string(), key.as_deref())?;
    let handled = handle::<JobDecider>(
        st.effects.store.as_ref(),
        &job.stream(),
        &cmd,
        k.id,
        &k.meta,
        in_project(c.project_id),
    )
    .await
    .map_err(command_error)?;
    job_after(st, c, job.0, handled.position()).await
}
