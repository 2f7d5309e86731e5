//! Dataset bytes: uploads live in the artifact store (`artifacts:PATH`);
//! a dataset registered in place (`s3://…`, `file:///…`, under a configured
//! `training.dataset_sources` prefix) is read from its URL each time a job
//! needs it, and its digest is checked against the one validated.

use crate::Effects;
use object_store::ObjectStoreExt;
use object_store::path::Path;

/// The URI of an uploaded dataset.
pub fn upload_uri(dataset: uuid::Uuid, name: &str) -> String {
    format!("artifacts:datasets/{}/{name}", dataset.simple())
}

/// Plain text files are windowed raw text; everything else is JSONL.
pub fn is_raw_text(name: &str) -> bool {
    name.ends_with(".txt")
}

/// A file name a dataset may have: one path segment, printable, no
/// separators or dot-only names.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
}

pub async fn write_upload(st: &Effects, uri: &str, bytes: bytes::Bytes) -> anyhow::Result<()> {
    let path = uri
        .strip_prefix("artifacts:")
        .ok_or_else(|| anyhow::anyhow!("not an upload URI: {uri}"))?;
    st.artifacts.put(&Path::from(path), bytes).await?;
    Ok(())
}

/// Whether `uri` may be read in place: it starts with one of the
/// configured `training.dataset_sources` (none by default: fail closed).
pub fn allowed_source(st: &Effects, uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    // Compare the normalized URL, so `..` segments cannot climb out of a prefix.
    let normalized = url.as_str();
    !uri.contains("/../")
        && st
            .settings
            .training
            .dataset_sources
            .iter()
            .any(|p| !p.is_empty() && normalized.starts_with(p.as_str()))
}

/// The bytes of a dataset, wherever it lives; at most `training.max_dataset_bytes`.
pub async fn read_dataset(st: &Effects, uri: &str) -> anyhow::Result<Vec<u8>> {
    let (store, path) = match uri.strip_prefix("artifacts:") {
        Some(path) => (st.artifacts.store().clone(), Path::from(path)),
        None => {
            anyhow::ensure!(
                allowed_source(st, uri),
                "{uri} is not under a configured training.dataset_sources prefix"
            );
            crate::blobs::open_object(uri, &st.settings.artifacts.options)?
        }
    };
    let meta = store.head(&path).await?;
    let limit = st.settings.training.max_dataset_bytes;
    anyhow::ensure!(
        meta.size <= limit,
        "{uri} is {} bytes; the limit is {limit} (training.max_dataset_bytes)",
        meta.size
    );
    Ok(store.get(&path).await?.bytes().await?.to_vec())
}
