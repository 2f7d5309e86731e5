//! Dataset bytes: uploads live in the artifact store (`artifacts:PATH`);
//! a dataset registered in place is read from its URL each time a job needs
//! it (`file:///…` on the server's disk).

use crate::state::AppState;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

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

pub async fn write_upload(
    st: &AppState,
    uri: &str,
    bytes: actix_web::web::Bytes,
) -> anyhow::Result<()> {
    let path = uri
        .strip_prefix("artifacts:")
        .ok_or_else(|| anyhow::anyhow!("not an upload URI: {uri}"))?;
    st.artifacts
        .put(&Path::from(path), PutPayload::from(bytes))
        .await?;
    Ok(())
}

pub async fn read_dataset(st: &AppState, uri: &str) -> anyhow::Result<Vec<u8>> {
    if let Some(path) = uri.strip_prefix("artifacts:") {
        let r = st.artifacts.get(&Path::from(path)).await?;
        return Ok(r.bytes().await?.to_vec());
    }
    let url = url::Url::parse(uri)?;
    match url.scheme() {
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|_| anyhow::anyhow!("{uri} is not a local file path"))?;
            Ok(tokio::fs::read(path).await?)
        }
        other => anyhow::bail!("datasets at {other}:// URLs are not supported by this build"),
    }
}
