//! Creating a test suite and uploading its cases: the file is parsed and
//! checked whole in the domain (a bad file stores nothing), then decided on
//! the suite's stream with the request's command id, so a retried upload
//! lands once. Both answer once the read models show the write.

use crate::Effects;
use ftl_commands::Caller;
use ftl_commands::handler::{CommandError, handle};
use ftl_commands::store::Metadata;
use ftl_domain::DomainError;
use ftl_domain::evaluation::suite::{
    SuiteCommand, SuiteDecider, SuiteEvent, SuiteState, UploadFormat, UploadMode, UploadRejected,
    UploadSource, parse_upload,
};
use ftl_domain::ids::SuiteId;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A command's id and the metadata of the events it writes (the edge
/// derives the id from an idempotency key, or makes a fresh one).
pub struct Request<'a> {
    pub caller: &'a Caller,
    pub command_id: Uuid,
    pub meta: &'a Metadata,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The file was refused; every bad row is listed.
    #[error("the file was refused: {} problem(s)", .0.error_count)]
    Rejected(UploadRejected),
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// What an upload made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub version: u32,
    /// Cases in the file.
    pub rows: usize,
}

/// Creates suite `name` in the caller's project; returns its id once the
/// read models show it.
pub async fn create(
    effects: &Effects,
    req: Request<'_>,
    suite: SuiteId,
    name: String,
    description: String,
) -> Result<SuiteId, CommandError> {
    let cmd = SuiteCommand::Create {
        suite_id: suite,
        project_id: req.caller.project_id,
        name,
        description,
    };
    let project = req.caller.project_id;
    // A suite id another project holds is refused as taken, not found.
    decide(effects, &req, suite, &cmd, |s| match s.project_id {
        Some(p) if p != project => Err(DomainError::AlreadyExists {
            entity: "test suite",
        }),
        _ => Ok(()),
    })
    .await?;
    Ok(suite)
}

/// Uploads `bytes` as a new version of `suite` (in the caller's project:
/// another project's suite is "not found").
pub async fn upload(
    effects: &Effects,
    req: Request<'_>,
    suite: SuiteId,
    format: UploadFormat,
    mode: UploadMode,
    bytes: &[u8],
) -> Result<Uploaded, UploadError> {
    let cases = parse_upload(format, bytes).map_err(UploadError::Rejected)?;
    let source = UploadSource {
        format,
        sha256: hex::encode(Sha256::digest(bytes)),
        rows: cases.len(),
    };
    let rows = cases.len();
    let cmd = SuiteCommand::Upload {
        mode,
        source,
        cases,
    };
    let project = req.caller.project_id;
    let events = decide(effects, &req, suite, &cmd, |s| match s.project_id {
        Some(p) if p == project => Ok(()),
        _ => Err(DomainError::NotFound {
            entity: "test suite",
        }),
    })
    .await?;
    let version = events
        .iter()
        .find_map(|e| match e {
            SuiteEvent::CasesUploaded(u) => Some(u.version),
            SuiteEvent::Created(_) => None,
        })
        .unwrap_or_default();
    Ok(Uploaded { version, rows })
}

/// Handles `cmd` on the suite's stream (after `guard`), then waits for the
/// read models to show what it wrote.
async fn decide(
    effects: &Effects,
    req: &Request<'_>,
    suite: SuiteId,
    cmd: &SuiteCommand,
    guard: impl Fn(&SuiteState) -> Result<(), DomainError>,
) -> Result<Vec<SuiteEvent>, CommandError> {
    let handled = handle::<SuiteDecider>(
        effects.store.as_ref(),
        &suite.stream(),
        cmd,
        req.command_id,
        req.meta,
        guard,
    )
    .await?;
    let position = handled.position();
    if !effects
        .projections
        .wait_for(position, effects.ryw_timeout())
        .await
    {
        tracing::warn!(position, "read models did not catch up in time");
    }
    Ok(handled.events)
}
