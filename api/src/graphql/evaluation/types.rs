//! A test suite, its versions and cases as GraphQL shows them; an upload's
//! refusal with every bad row in `extensions.rowErrors`.

use crate::graphql::common::{Code, connection_page, gql_error, internal, state};
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, ErrorExtensions, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use ftl_domain::evaluation::suite::{SuiteCase, UploadFormat, UploadMode, UploadRejected};
use ftl_projections::views::evaluation::suites as view;

/// A file's format.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum SuiteFileFormat {
    /// A header row, then one case per row (`specs/formats.md` §8).
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// One prompt per line (the seed's "bulk prompt upload").
    Lines,
}

impl From<SuiteFileFormat> for UploadFormat {
    fn from(f: SuiteFileFormat) -> Self {
        match f {
            SuiteFileFormat::Csv => UploadFormat::Csv,
            SuiteFileFormat::Jsonl => UploadFormat::Jsonl,
            SuiteFileFormat::Lines => UploadFormat::Lines,
        }
    }
}

/// How an upload makes the next version.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum SuiteUploadMode {
    /// Add the cases; one whose id is in the suite replaces it.
    #[default]
    Append,
    /// The new version holds exactly the file's cases.
    Replace,
}

impl From<SuiteUploadMode> for UploadMode {
    fn from(m: SuiteUploadMode) -> Self {
        match m {
            SuiteUploadMode::Append => UploadMode::Append,
            SuiteUploadMode::Replace => UploadMode::Replace,
        }
    }
}

/// A named, versioned set of test cases.
pub struct TestSuite(pub view::SuiteRow);

#[Object]
impl TestSuite {
    async fn id(&self) -> ID {
        ID(self.0.suite_id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// The latest version (0 before the first upload).
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// Cases in the latest version.
    async fn case_count(&self) -> i64 {
        self.0.case_count
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// Every version, oldest first: what each upload was and made.
    async fn versions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SuiteVersion>> {
        let st = state(ctx)?;
        Ok(view::versions(&st.effects.db, self.0.suite_id)
            .await
            .map_err(internal)?
            .into_iter()
            .map(SuiteVersion::from)
            .collect())
    }

    /// The cases of `version` (default: the latest), in upload order.
    async fn cases(
        &self,
        ctx: &Context<'_>,
        version: Option<i64>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, SuiteCaseNode>> {
        let st = state(ctx)?;
        connection_page(first, st.config.limits.page_size_max)?;
        let version = version.unwrap_or(self.0.version);
        if !(0..=self.0.version).contains(&version) {
            return Err(gql_error(
                Code::InvalidInput,
                format!("version must be between 0 and {}", self.0.version),
            ));
        }
        let cursor = after.as_deref().map(decode_cursor).transpose()?;
        let mut rows = view::cases(
            &st.effects.db,
            self.0.suite_id,
            version,
            cursor,
            i64::from(first) + 1,
        )
        .await
        .map_err(internal)?;
        let has_next = crate::graphql::common::next_page(&mut rows, first);
        let mut conn = Connection::new(after.is_some(), has_next);
        conn.edges.extend(rows.into_iter().map(|r| {
            let (v, o) = r.cursor();
            Edge::new(format!("case:{v}:{o}"), SuiteCaseNode(r.body))
        }));
        Ok(conn)
    }
}

fn decode_cursor(s: &str) -> async_graphql::Result<(i64, i64)> {
    let malformed = || gql_error(Code::InvalidInput, "malformed cursor");
    let rest = s.strip_prefix("case:").ok_or_else(malformed)?;
    let (v, o) = rest.split_once(':').ok_or_else(malformed)?;
    Ok((
        v.parse().map_err(|_| malformed())?,
        o.parse().map_err(|_| malformed())?,
    ))
}

/// One upload's version.
#[derive(SimpleObject, Clone, Debug)]
pub struct SuiteVersion {
    pub version: i64,
    /// `append` or `replace`.
    pub mode: String,
    /// `csv`, `jsonl` or `lines`.
    pub format: String,
    /// SHA-256 of the file as received, hex.
    pub sha256: String,
    /// Cases in the file.
    pub rows: i64,
    /// Cases in the suite at this version.
    pub case_count: i64,
    pub uploaded_at: DateTime<Utc>,
}

impl From<view::VersionRow> for SuiteVersion {
    fn from(r: view::VersionRow) -> Self {
        Self {
            version: r.version,
            mode: r.mode,
            format: r.format,
            sha256: r.sha256,
            rows: r.row_count,
            case_count: r.case_count,
            uploaded_at: r.uploaded_at,
        }
    }
}

/// One case of a suite.
#[derive(Clone, Debug)]
pub struct SuiteCaseNode(pub SuiteCase);

#[Object(name = "TestCase")]
impl SuiteCaseNode {
    /// Unique in the suite.
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn messages(&self) -> Vec<CaseMessage> {
        self.0
            .case
            .messages
            .iter()
            .map(|m| CaseMessage {
                role: m.role.clone(),
                content: m.content.clone(),
            })
            .collect()
    }
    async fn reference_answer(&self) -> Option<&str> {
        self.0.case.reference_answer.as_deref()
    }
    /// Context passages; a citation `[k]` names the k-th (1-based).
    async fn context(&self) -> Vec<CasePassage> {
        self.0
            .case
            .context
            .iter()
            .map(|p| CasePassage {
                id: p.id.clone(),
                text: p.text.clone(),
            })
            .collect()
    }
    async fn required_elements(&self) -> &[String] {
        &self.0.case.required_elements
    }
    async fn output_schema(&self) -> Option<async_graphql::Json<serde_json::Value>> {
        self.0.case.output_schema.clone().map(async_graphql::Json)
    }
    async fn output_pattern(&self) -> Option<&str> {
        self.0.case.output_pattern.as_deref()
    }
    async fn min_length(&self) -> Option<u64> {
        self.0.case.min_length.map(|n| n as u64)
    }
    async fn max_length(&self) -> Option<u64> {
        self.0.case.max_length.map(|n| n as u64)
    }
    async fn require_citations(&self) -> bool {
        self.0.case.require_citations
    }
    async fn tags(&self) -> &[String] {
        &self.0.case.tags
    }
    async fn labels(&self) -> &[String] {
        &self.0.labels
    }
    async fn metadata(&self) -> Option<async_graphql::Json<serde_json::Value>> {
        self.0.metadata.clone().map(async_graphql::Json)
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct CaseMessage {
    pub role: String,
    pub content: String,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct CasePassage {
    pub id: String,
    pub text: String,
}

/// What an upload made.
#[derive(SimpleObject)]
pub struct SuiteUpload {
    pub suite: TestSuite,
    /// The version this upload made.
    pub version: i64,
    /// Cases in the file.
    pub rows: i64,
}

/// A refused file: `LIMIT_EXCEEDED` for its size or row count,
/// `INVALID_INPUT` otherwise; `rowErrors` lists the first 100 problems
/// (`line`, `column`, `code`, `message`), `errorCount` how many there were.
pub fn rejected(r: UploadRejected) -> async_graphql::Error {
    let code = if r.is_limit() {
        Code::LimitExceeded
    } else {
        Code::InvalidInput
    };
    let first = r
        .errors
        .first()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    let rows = async_graphql::Value::from_json(serde_json::to_value(&r.errors).unwrap_or_default())
        .unwrap_or_default();
    let count = r.error_count;
    async_graphql::Error::new(format!(
        "the file was refused with {count} problem(s); nothing was stored (first: {first})"
    ))
    .extend_with(move |_, e| {
        e.set("code", code.as_str());
        e.set("errorCount", count as u64);
        e.set("rowErrors", rows.clone());
    })
}
