//! `createTestSuite` and `uploadTestCases` (files past the GraphQL body
//! limit go to `POST /api/v1/suites/{id}/cases`).

use super::types::{SuiteFileFormat, SuiteUpload, SuiteUploadMode, TestSuite, rejected};
use crate::graphql::common::{
    Code, caller, command_error, gql_error, internal, keyed, parse_id, state,
};
use crate::state::AppState;
use async_graphql::{Context, ID, Object};
use ftl_domain::ids::SuiteId;
use ftl_domain::project::Scope;
use ftl_effects::evaluation::suites::{self, Request, UploadError};
use ftl_projections::views::evaluation::suites as view;
use uuid::Uuid;

#[derive(Default)]
pub struct EvaluationMutation;

#[Object]
impl EvaluationMutation {
    /// A new, empty suite (version 0). With `idempotencyKey`, a retry
    /// returns the same suite.
    async fn create_test_suite(
        &self,
        ctx: &Context<'_>,
        name: String,
        description: Option<String>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<TestSuite> {
        let c = caller(ctx, Scope::Write)?;
        let st = state(ctx)?;
        let k = keyed(ctx, c, "createTestSuite", "", idempotency_key.as_deref())?;
        let req = Request {
            caller: c,
            command_id: k.id,
            meta: &k.meta,
        };
        let id = suites::create(
            &st.effects,
            req,
            SuiteId(k.id),
            name,
            description.unwrap_or_default(),
        )
        .await
        .map_err(command_error)?;
        read(st, c.project_id.0, id.0).await
    }

    /// Uploads `content` as the suite's next version. The file is checked
    /// whole first: a bad one is refused with every bad row in
    /// `extensions.rowErrors` and nothing is stored.
    async fn upload_test_cases(
        &self,
        ctx: &Context<'_>,
        suite_id: ID,
        format: SuiteFileFormat,
        content: String,
        #[graphql(default)] mode: SuiteUploadMode,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<SuiteUpload> {
        let c = caller(ctx, Scope::Write)?;
        let st = state(ctx)?;
        let id = parse_id(&suite_id, "suiteId")?;
        let k = keyed(
            ctx,
            c,
            "uploadTestCases",
            &id.to_string(),
            idempotency_key.as_deref(),
        )?;
        let req = Request {
            caller: c,
            command_id: k.id,
            meta: &k.meta,
        };
        let up = suites::upload(
            &st.effects,
            req,
            SuiteId(id),
            format.into(),
            mode.into(),
            content.as_bytes(),
        )
        .await
        .map_err(|e| match e {
            UploadError::Rejected(r) => rejected(r),
            UploadError::Command(e) => command_error(e),
        })?;
        Ok(SuiteUpload {
            suite: read(st, c.project_id.0, id).await?,
            version: i64::from(up.version),
            rows: up.rows as i64,
        })
    }
}

async fn read(st: &AppState, project: Uuid, id: Uuid) -> async_graphql::Result<TestSuite> {
    view::suite(&st.effects.db, project, id)
        .await
        .map_err(internal)?
        .map(TestSuite)
        .ok_or_else(|| {
            gql_error(
                Code::Internal,
                "the suite is not readable yet; retry the query",
            )
        })
}
