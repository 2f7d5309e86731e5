//! `testSuites`, `testSuite` and `validateOutput`.

use super::types::TestSuite;
use super::validate::{self, TestCaseInput, ValidatorOutcome};
use crate::graphql::common::{Code, caller, connection_page, gql_error, internal, parse_id, state};
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object};
use ftl_domain::project::Scope;
use ftl_projections::views::evaluation::suites as view;

#[derive(Default)]
pub struct EvaluationQuery;

#[Object]
impl EvaluationQuery {
    /// This project's test suites, newest first.
    async fn test_suites(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, TestSuite>> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        connection_page(first, st.config.limits.page_size_max)?;
        let before = after
            .as_deref()
            .map(|a| {
                a.strip_prefix("suite:")
                    .and_then(|s| s.parse::<i64>().ok())
                    .ok_or_else(|| gql_error(Code::InvalidInput, "malformed cursor"))
            })
            .transpose()?;
        let mut rows = view::suites(&st.effects.db, c.project_id.0, before, i64::from(first) + 1)
            .await
            .map_err(internal)?;
        let has_next = crate::graphql::common::next_page(&mut rows, first);
        let mut conn = Connection::new(after.is_some(), has_next);
        conn.edges.extend(
            rows.into_iter()
                .map(|r| Edge::new(format!("suite:{}", r.seq), TestSuite(r))),
        );
        Ok(conn)
    }

    /// A suite of this project (null for an unknown id or another project's).
    async fn test_suite(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<TestSuite>> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let id = parse_id(&id, "id")?;
        Ok(view::suite(&st.effects.db, c.project_id.0, id)
            .await
            .map_err(internal)?
            .map(TestSuite))
    }

    /// Runs the model-free validators on `output` for `case` — no model is
    /// called, nothing is stored. `validators` (ids: `no_hallucination`,
    /// `groundedness`, `citations`, `required_elements`, `format`) default
    /// to those the case configures. A validator the case cannot feed
    /// (no context, a schema that does not compile) is `INVALID_INPUT`
    /// naming the field.
    async fn validate_output(
        &self,
        ctx: &Context<'_>,
        case: TestCaseInput,
        output: String,
        validators: Option<Vec<String>>,
    ) -> async_graphql::Result<Vec<ValidatorOutcome>> {
        caller(ctx, Scope::Read)?;
        validate::run(case, &output, validators)
    }
}
