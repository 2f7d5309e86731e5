//! Test suites (issue #20, item 1): named, versioned sets of test cases. A
//! suite is a stream (`suite-{id}`); every upload makes a new version that
//! either adds to the cases (a case whose id is already there is replaced)
//! or replaces them all. Runs pin a version, so a result always says which
//! cases it scored.
//!
//! An upload's cases travel in chunks of at most [`CHUNK_BYTES`] of JSON
//! (KurrentDB refuses events over 16 MiB; a 20 MiB file is many chunks),
//! all appended at once, so a version is never seen half-written.

pub mod upload;

use super::validators::TestCase;
use crate::DomainError;
use crate::decider::Decider;
use crate::ids::{ProjectId, SuiteId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

pub use upload::{RowError, UploadFormat, UploadRejected, parse_upload};

/// Cases in one version of a suite.
pub const MAX_SUITE_CASES: usize = 10_000;
/// Serialized cases in one `test_suite.cases_uploaded` event (a single case
/// larger than this travels alone).
pub const CHUNK_BYTES: usize = 1024 * 1024;
/// Length of a suite's description.
pub const MAX_DESCRIPTION_LEN: usize = 4096;

/// One case of a suite: its id (unique in the suite), what the model is
/// asked and what its output is checked by, plus free labels and metadata
/// (`specs/formats.md` §8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteCase {
    pub id: String,
    #[serde(flatten)]
    pub case: TestCase,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadMode {
    /// Add the cases; one whose id is in the suite replaces it.
    Append,
    /// The new version holds exactly these cases.
    Replace,
}

/// Where an upload's cases came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadSource {
    pub format: UploadFormat,
    /// SHA-256 of the file as received, hex.
    pub sha256: String,
    pub rows: usize,
}

/// `test_suite.created` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteCreated {
    pub suite_id: SuiteId,
    pub project_id: ProjectId,
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// `test_suite.cases_uploaded` v1: one chunk of an upload. The first chunk
/// of a version carries the mode and the source; later chunks of the same
/// version add to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CasesUploaded {
    pub suite_id: SuiteId,
    pub version: u32,
    /// 0 for the first chunk of the version.
    pub chunk: u32,
    pub chunks: u32,
    pub mode: UploadMode,
    pub source: UploadSource,
    pub cases: Vec<SuiteCase>,
}

crate::events::event_family! {
    /// A test suite's events (`suite-{id}`).
    SuiteEvent, suite_id: SuiteId, "test suite";
    Created(SuiteCreated) = "test_suite.created",
    CasesUploaded(CasesUploaded) = "test_suite.cases_uploaded",
}

impl crate::AggregateEvent for SuiteEvent {
    fn into_domain(self) -> crate::DomainEvent {
        crate::DomainEvent::Suite(self)
    }
    fn from_domain(event: crate::DomainEvent) -> Option<Self> {
        match event {
            crate::DomainEvent::Suite(e) => Some(e),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SuiteCommand {
    Create {
        suite_id: SuiteId,
        project_id: ProjectId,
        name: String,
        description: String,
    },
    Upload {
        mode: UploadMode,
        source: UploadSource,
        cases: Vec<SuiteCase>,
    },
}

/// What deciding needs of a suite's history.
#[derive(Debug, Clone, Default)]
pub struct SuiteState {
    pub project_id: Option<ProjectId>,
    pub suite_id: Option<SuiteId>,
    pub version: u32,
    /// The ids of the latest version's cases.
    pub case_ids: BTreeSet<String>,
}

pub struct SuiteDecider;

impl Decider for SuiteDecider {
    type State = SuiteState;
    type Command = SuiteCommand;
    type Event = SuiteEvent;

    fn decide(
        state: &SuiteState,
        command: &SuiteCommand,
        _now: DateTime<Utc>,
    ) -> Result<Vec<SuiteEvent>, DomainError> {
        match command {
            SuiteCommand::Create {
                suite_id,
                project_id,
                name,
                description,
            } => {
                if state.suite_id.is_some() {
                    return Err(DomainError::AlreadyExists {
                        entity: "test suite",
                    });
                }
                validate_name(name)?;
                if description.len() > MAX_DESCRIPTION_LEN {
                    return Err(DomainError::limit(
                        "description",
                        format!("at most {MAX_DESCRIPTION_LEN} bytes"),
                    ));
                }
                Ok(vec![SuiteEvent::Created(SuiteCreated {
                    suite_id: *suite_id,
                    project_id: *project_id,
                    name: name.trim().to_string(),
                    description: description.clone(),
                })])
            }
            SuiteCommand::Upload {
                mode,
                source,
                cases,
            } => {
                let suite_id = state.suite_id.ok_or(DomainError::NotFound {
                    entity: "test suite",
                })?;
                if cases.is_empty() {
                    return Err(DomainError::invalid("cases", "the file holds no cases"));
                }
                let total = match mode {
                    UploadMode::Replace => cases.len(),
                    UploadMode::Append => {
                        let new = cases
                            .iter()
                            .filter(|c| !state.case_ids.contains(&c.id))
                            .count();
                        state.case_ids.len() + new
                    }
                };
                if total > MAX_SUITE_CASES {
                    return Err(DomainError::limit(
                        "cases",
                        format!(
                            "a suite holds at most {MAX_SUITE_CASES} cases; this upload would make {total}"
                        ),
                    ));
                }
                let version = state.version + 1;
                let chunks = chunk(cases);
                let n = chunks.len() as u32;
                Ok(chunks
                    .into_iter()
                    .enumerate()
                    .map(|(i, cases)| {
                        SuiteEvent::CasesUploaded(CasesUploaded {
                            suite_id,
                            version,
                            chunk: i as u32,
                            chunks: n,
                            mode: *mode,
                            source: source.clone(),
                            cases,
                        })
                    })
                    .collect())
            }
        }
    }

    fn evolve(mut state: SuiteState, event: &SuiteEvent) -> SuiteState {
        match event {
            SuiteEvent::Created(e) => {
                state.suite_id = Some(e.suite_id);
                state.project_id = Some(e.project_id);
            }
            SuiteEvent::CasesUploaded(e) => {
                if e.chunk == 0 && e.mode == UploadMode::Replace {
                    state.case_ids.clear();
                }
                state.version = e.version;
                state.case_ids.extend(e.cases.iter().map(|c| c.id.clone()));
            }
        }
        state
    }
}

fn validate_name(name: &str) -> Result<(), DomainError> {
    if name.trim().is_empty() || name.len() > crate::limits::MAX_NAME_LEN {
        return Err(DomainError::invalid(
            "name",
            format!("must be 1 to {} bytes", crate::limits::MAX_NAME_LEN),
        ));
    }
    Ok(())
}

/// Splits cases, in order, into runs of at most [`CHUNK_BYTES`] of JSON.
fn chunk(cases: &[SuiteCase]) -> Vec<Vec<SuiteCase>> {
    let mut out: Vec<Vec<SuiteCase>> = vec![];
    let mut current = vec![];
    let mut bytes = 0;
    for c in cases {
        // The case and the comma after it in the event's array.
        let size = serde_json::to_vec(c).map(|v| v.len()).unwrap_or(0) + 1;
        if !current.is_empty() && bytes + size > CHUNK_BYTES {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(c.clone());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests;
