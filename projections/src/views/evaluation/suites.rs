//! Test suites as the lab reads them: the suite, one row per version (what
//! was uploaded, from which file), and the cases, each with the version
//! that added it and the one that removed it (replaced by id, or dropped by
//! a `replace` upload), so any version's cases can be listed.

use crate::json_text::JsonText;
use crate::runner::{Decoded, Projection, ProjectionError};
use crate::views::types;
use crate::{DbTx, execute};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ftl_commands::Db;
use ftl_domain::DomainEvent;
use ftl_domain::evaluation::suite::{
    CasesUploaded, MAX_SUITE_CASES, SuiteCase, SuiteCreated, SuiteEvent, UploadMode,
};
use uuid::Uuid;

pub struct SuitesProjection;

#[async_trait]
impl Projection for SuitesProjection {
    fn name(&self) -> &'static str {
        "suites"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["suites", "suite_versions", "suite_cases"]
    }

    fn ddl(&self, postgres: bool, s: &str) -> String {
        let t = types(postgres);
        let (u, ts) = (t.uuid, t.ts);
        format!(
            "CREATE TABLE IF NOT EXISTS suites{s} (
                suite_id {u} PRIMARY KEY, project_id {u} NOT NULL, name TEXT NOT NULL,
                description TEXT NOT NULL, version BIGINT NOT NULL, case_count BIGINT NOT NULL,
                created_at {ts} NOT NULL, updated_at {ts} NOT NULL, seq BIGINT NOT NULL);
             CREATE INDEX IF NOT EXISTS suites{s}_by_project ON suites{s} (project_id, seq);
             CREATE TABLE IF NOT EXISTS suite_versions{s} (
                suite_id {u} NOT NULL, version BIGINT NOT NULL, mode TEXT NOT NULL,
                format TEXT NOT NULL, sha256 TEXT NOT NULL, row_count BIGINT NOT NULL,
                case_count BIGINT NOT NULL, uploaded_at {ts} NOT NULL,
                PRIMARY KEY (suite_id, version));
             CREATE TABLE IF NOT EXISTS suite_cases{s} (
                suite_id {u} NOT NULL, added_version BIGINT NOT NULL, ord BIGINT NOT NULL,
                case_id TEXT NOT NULL, removed_version BIGINT, body TEXT NOT NULL,
                PRIMARY KEY (suite_id, added_version, ord));
             CREATE INDEX IF NOT EXISTS suite_cases{s}_by_id ON suite_cases{s} (suite_id, case_id);"
        )
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type.starts_with("test_suite.")
    }

    async fn apply(
        &self,
        tx: &mut DbTx,
        s: &str,
        events: &[Decoded],
    ) -> Result<(), ProjectionError> {
        for d in events {
            match &d.event {
                DomainEvent::Suite(SuiteEvent::Created(e)) => created(tx, s, d, e).await?,
                DomainEvent::Suite(SuiteEvent::CasesUploaded(e)) => uploaded(tx, s, d, e).await?,
                _ => {}
            }
        }
        Ok(())
    }
}

async fn created(
    tx: &mut DbTx,
    s: &str,
    d: &Decoded,
    e: &SuiteCreated,
) -> Result<(), ProjectionError> {
    let sql = format!(
        "INSERT INTO suites{s} (suite_id, project_id, name, description, version, case_count,
                                created_at, updated_at, seq)
         VALUES ($1, $2, $3, $4, 0, 0, $5, $5, $6) ON CONFLICT DO NOTHING"
    );
    execute!(
        tx,
        sql,
        e.suite_id.0,
        e.project_id.0,
        &e.name,
        &e.description,
        d.recorded_at,
        d.position as i64
    )?;
    Ok(())
}

/// One chunk of a version: the first retires what the version drops (all
/// live cases in `replace` mode); every chunk adds its cases, retires the
/// older cases they replace by id, and recounts.
async fn uploaded(
    tx: &mut DbTx,
    s: &str,
    d: &Decoded,
    e: &CasesUploaded,
) -> Result<(), ProjectionError> {
    let (suite, version) = (e.suite_id.0, i64::from(e.version));
    if e.chunk == 0 && e.mode == UploadMode::Replace {
        let sql = format!(
            "UPDATE suite_cases{s} SET removed_version = $2
             WHERE suite_id = $1 AND removed_version IS NULL AND added_version < $2"
        );
        execute!(tx, sql, suite, version)?;
    }
    let insert = format!(
        "INSERT INTO suite_cases{s} (suite_id, added_version, ord, case_id, removed_version, body)
         VALUES ($1, $2, $3, $4, NULL, $5) ON CONFLICT DO NOTHING"
    );
    // Chunks hold at most a version's cases, so (chunk, index) orders them.
    let base = i64::from(e.chunk) * MAX_SUITE_CASES as i64;
    for (i, case) in e.cases.iter().enumerate() {
        let body = serde_json::to_string(case).unwrap_or_default();
        execute!(
            tx,
            insert.clone(),
            suite,
            version,
            base + i as i64,
            &case.id,
            body
        )?;
    }
    let retire = format!(
        "UPDATE suite_cases{s} SET removed_version = $2
         WHERE suite_id = $1 AND removed_version IS NULL AND added_version < $2
           AND case_id IN (SELECT case_id FROM suite_cases{s} WHERE suite_id = $1 AND added_version = $2)"
    );
    execute!(tx, retire, suite, version)?;
    let count = format!(
        "(SELECT COUNT(*) FROM suite_cases{s} WHERE suite_id = $1 AND removed_version IS NULL)"
    );
    let sql = format!(
        "INSERT INTO suite_versions{s} (suite_id, version, mode, format, sha256, row_count,
                                        case_count, uploaded_at)
         VALUES ($1, $2, $3, $4, $5, $6, {count}, $7)
         ON CONFLICT (suite_id, version) DO UPDATE SET case_count = excluded.case_count"
    );
    execute!(
        tx,
        sql,
        suite,
        version,
        mode_str(e.mode),
        e.source.format.as_str(),
        &e.source.sha256,
        e.source.rows as i64,
        d.recorded_at
    )?;
    let sql = format!(
        "UPDATE suites{s} SET version = $2, case_count = {count}, updated_at = $3
         WHERE suite_id = $1"
    );
    execute!(tx, sql, suite, version, d.recorded_at)?;
    Ok(())
}

fn mode_str(m: UploadMode) -> &'static str {
    match m {
        UploadMode::Append => "append",
        UploadMode::Replace => "replace",
    }
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SuiteRow {
    pub suite_id: Uuid,
    pub name: String,
    pub description: String,
    pub version: i64,
    pub case_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub seq: i64,
}

const SUITE_COLUMNS: &str =
    "suite_id, name, description, version, case_count, created_at, updated_at, seq";

/// Suite `id` if it is in `project`.
pub async fn suite(db: &Db, project: Uuid, id: Uuid) -> Result<Option<SuiteRow>, sqlx::Error> {
    let sql = format!("SELECT {SUITE_COLUMNS} FROM suites WHERE suite_id = $1 AND project_id = $2");
    crate::fetch!(
        db,
        fetch_optional,
        SuiteRow,
        sqlx::AssertSqlSafe(sql),
        id,
        project
    )
}

/// A page of `project`'s suites, newest first, after the one at `before_seq`.
pub async fn suites(
    db: &Db,
    project: Uuid,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<SuiteRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {SUITE_COLUMNS} FROM suites WHERE project_id = $1 AND seq < $2
         ORDER BY seq DESC LIMIT $3"
    );
    let before = before_seq.unwrap_or(i64::MAX);
    crate::fetch!(
        db,
        fetch_all,
        SuiteRow,
        sqlx::AssertSqlSafe(sql),
        project,
        before,
        limit
    )
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct VersionRow {
    pub version: i64,
    pub mode: String,
    pub format: String,
    pub sha256: String,
    pub row_count: i64,
    pub case_count: i64,
    pub uploaded_at: DateTime<Utc>,
}

/// A suite's versions, oldest first.
pub async fn versions(db: &Db, suite: Uuid) -> Result<Vec<VersionRow>, sqlx::Error> {
    let sql = "SELECT version, mode, format, sha256, row_count, case_count, uploaded_at
               FROM suite_versions WHERE suite_id = $1 ORDER BY version";
    crate::fetch!(db, fetch_all, VersionRow, sql, suite)
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CaseRow {
    pub added_version: i64,
    pub ord: i64,
    #[sqlx(try_from = "JsonText<SuiteCase>")]
    pub body: SuiteCase,
}

impl CaseRow {
    /// Where the next page starts.
    pub fn cursor(&self) -> (i64, i64) {
        (self.added_version, self.ord)
    }
}

/// The cases of `version` in upload order (cases kept from earlier versions
/// first), after `after`; `limit` at most.
pub async fn cases(
    db: &Db,
    suite: Uuid,
    version: i64,
    after: Option<(i64, i64)>,
    limit: i64,
) -> Result<Vec<CaseRow>, sqlx::Error> {
    let (av, ord) = after.unwrap_or((-1, -1));
    let sql = "SELECT added_version, ord, body FROM suite_cases
               WHERE suite_id = $1 AND added_version <= $2
                 AND (removed_version IS NULL OR removed_version > $2)
                 AND (added_version > $3 OR (added_version = $3 AND ord > $4))
               ORDER BY added_version, ord LIMIT $5";
    crate::fetch!(db, fetch_all, CaseRow, sql, suite, version, av, ord, limit)
}
