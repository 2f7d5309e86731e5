//! Registering a dataset: parse it first (every bad line reported by
//! number, nothing stored), then store the bytes (uploads) and record
//! `dataset.registered`. The same bytes under the same name (or URL) in a
//! project are the same dataset: registering again changes nothing.

use super::storage;
use crate::Effects;
use ftl_commands::Caller;
use ftl_commands::store::{ExpectedVersion, NewEvent};
use ftl_domain::ids::derive_event_id;
use ftl_domain::registry::DatasetRegistered;
use ftl_domain::{DatasetId, DomainEvent};
use ftl_trainer::dataset::DataIssue;
use uuid::Uuid;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Registered {
    pub id: Uuid,
    pub name: String,
    pub uri: String,
    pub sha256: String,
    pub size: u64,
    /// `text`, `supervised` or `preference`.
    pub kind: &'static str,
    pub examples: u64,
    /// False when this dataset was registered before.
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("dataset has {} problem(s)", .0.len())]
    Invalid(Vec<DataIssue>),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Where the bytes are: uploaded now, or already at a URL (read in place).
pub enum Source {
    Upload,
    InPlace(String),
}

pub async fn register(
    st: &Effects,
    caller: &Caller,
    name: &str,
    source: Source,
    bytes: bytes::Bytes,
) -> Result<Registered, RegisterError> {
    let raw_text = storage::is_raw_text(name);
    let parse_bytes = bytes.clone();
    let dataset = tokio::task::spawn_blocking(move || {
        ftl_trainer::Dataset::parse(&parse_bytes, raw_text, 1024)
    })
    .await
    .map_err(|e| RegisterError::Other(e.into()))?
    .map_err(RegisterError::Invalid)?;
    let key = match &source {
        Source::Upload => format!("dataset/{name}/{}", dataset.digest),
        Source::InPlace(uri) => format!("dataset/{uri}/{}", dataset.digest),
    };
    let id = DatasetId(Uuid::new_v5(&caller.project_id.0, key.as_bytes()));
    let uri = match source {
        Source::Upload => {
            let uri = storage::upload_uri(id.0, name);
            storage::write_upload(st, &uri, bytes.clone()).await?;
            uri
        }
        Source::InPlace(uri) => uri,
    };
    let kind = match dataset.kind {
        ftl_trainer::DatasetKind::Text => "text",
        ftl_trainer::DatasetKind::Supervised => "supervised",
        ftl_trainer::DatasetKind::Preference => "preference",
    };
    let event = DomainEvent::DatasetRegistered(DatasetRegistered {
        dataset_id: id,
        project_id: caller.project_id,
        name: name.to_string(),
        uri: uri.clone(),
        size: bytes.len() as u64,
        sha256: dataset.digest.clone(),
        kind: kind.into(),
        examples: dataset.examples.len() as u64,
    });
    let mut meta = caller.metadata();
    meta.command_id = Some(id.0);
    let new = NewEvent::from_domain(derive_event_id(id.0, 0), &event, meta);
    let appended = st
        .store
        .append(&id.stream(), ExpectedVersion::Any, vec![new])
        .await
        .map_err(anyhow::Error::from)?;
    st.projections
        .wait_for(appended.last_position, st.ryw_timeout())
        .await;
    Ok(Registered {
        id: id.0,
        name: name.to_string(),
        uri,
        sha256: dataset.digest,
        size: bytes.len() as u64,
        kind,
        examples: dataset.examples.len() as u64,
        // The same registration again finds its event already stored.
        created: !appended.deduplicated,
    })
}
