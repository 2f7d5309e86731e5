//! `Blobs`: the artifact store as the edge sees it — put, get, ranged
//! reads, streamed uploads that hash as they go, folder listings and
//! deletes — with errors the edge can map (not found, a refused symbolic
//! link, anything else). The object_store crate stays behind it.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use ftl_commands::digest::FieldHasher;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use std::ops::Range;
use std::sync::Arc;

/// A location in the blob store (`folder/file`), validated as object_store
/// spells paths.
pub use object_store::path::Path as BlobKey;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("not found")]
    NotFound,
    /// The path passes through a symbolic link (see [`super::NoFollowFs`]).
    #[error("permission denied")]
    Denied,
    #[error("artifact store: {0}")]
    Other(String),
}

impl From<object_store::Error> for BlobError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => Self::NotFound,
            object_store::Error::PermissionDenied { .. } => Self::Denied,
            other => Self::Other(other.to_string()),
        }
    }
}

/// A stored object's size and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub size: u64,
    pub last_modified: DateTime<Utc>,
}

/// A read: the object's whole size, the byte range served, its bytes.
pub struct BlobRead {
    pub size: u64,
    pub range: Range<u64>,
    pub bytes: BoxStream<'static, Result<Bytes, BlobError>>,
}

/// The immediate children of a folder: sub-folder names, then files with
/// their sizes, as the store lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub folders: Vec<String>,
    pub files: Vec<(String, u64)>,
}

/// What an upload stored: its size and SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone)]
pub struct Blobs(Arc<dyn ObjectStore>);

impl Blobs {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self(store)
    }

    /// The object store itself, for the effects that drive it directly
    /// (checkpoint storage, local models).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.0
    }

    pub async fn put(&self, key: &BlobKey, bytes: impl Into<Bytes>) -> Result<(), BlobError> {
        self.0
            .put(key, PutPayload::from(bytes.into()))
            .await
            .map(|_| ())
            .map_err(BlobError::from)
    }

    pub async fn get(&self, key: &BlobKey) -> Result<Bytes, BlobError> {
        Ok(self.0.get(key).await?.bytes().await?)
    }

    pub async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError> {
        let m = self.0.head(key).await?;
        Ok(BlobMeta {
            size: m.size,
            last_modified: m.last_modified,
        })
    }

    /// The object, or the byte range `range` of it, as a stream.
    pub async fn read(
        &self,
        key: &BlobKey,
        range: Option<Range<u64>>,
    ) -> Result<BlobRead, BlobError> {
        let got = self
            .0
            .get_opts(
                key,
                GetOptions::new().with_range(range.map(GetRange::Bounded)),
            )
            .await?;
        Ok(BlobRead {
            size: got.meta.size,
            range: got.range.clone(),
            bytes: got.into_stream().map_err(BlobError::from).boxed(),
        })
    }

    /// Starts a streamed upload to `key` (multipart where the store has it).
    pub async fn writer(&self, key: &BlobKey) -> Result<BlobWriter, BlobError> {
        let upload = self.0.put_multipart(key).await?;
        Ok(BlobWriter {
            inner: WriteMultipart::new(upload),
            hasher: FieldHasher::new(),
            size: 0,
        })
    }

    /// Deletes `key`, or every object under it when it is a folder; one
    /// already gone is no error.
    pub async fn delete_all(&self, key: &BlobKey) -> Result<(), BlobError> {
        let mut targets: Vec<BlobKey> = self
            .0
            .list(Some(key))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        if targets.is_empty() {
            targets.push(key.clone());
        }
        for t in targets {
            match self.0.delete(&t).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    pub async fn list_dir(&self, key: &BlobKey) -> Result<Listing, BlobError> {
        let listing = self.0.list_with_delimiter(Some(key)).await?;
        Ok(Listing {
            folders: listing
                .common_prefixes
                .iter()
                .filter_map(|d| d.filename().map(str::to_string))
                .collect(),
            files: listing
                .objects
                .iter()
                .filter_map(|o| o.location.filename().map(|n| (n.to_string(), o.size)))
                .collect(),
        })
    }
}

/// A streamed upload that hashes what it writes.
pub struct BlobWriter {
    inner: WriteMultipart,
    hasher: FieldHasher,
    size: u64,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.size += chunk.len() as u64;
        self.hasher.raw(chunk);
        self.inner.wait_for_capacity(4).await?;
        self.inner.write(chunk);
        Ok(())
    }

    pub async fn finish(self) -> Result<Written, BlobError> {
        self.inner.finish().await?;
        Ok(Written {
            size: self.size,
            sha256: self.hasher.hex(),
        })
    }

    /// Gives the upload up; nothing is stored.
    pub async fn abort(self) {
        let _ = self.inner.abort().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> (Blobs, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("ftl-blobs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir).unwrap();
        (Blobs::new(Arc::new(store)), dir)
    }

    #[tokio::test]
    async fn upload_hashes_reads_ranges_lists_and_deletes() {
        let (blobs, dir) = local();
        let key = BlobKey::from("run/artifacts/notes.txt");
        let mut w = blobs.writer(&key).await.unwrap();
        w.write(b"a").await.unwrap();
        w.write(b"bc").await.unwrap();
        let written = w.finish().await.unwrap();
        // FIPS 180-2: SHA-256("abc").
        assert_eq!(
            written,
            Written {
                size: 3,
                sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into()
            }
        );
        assert_eq!(blobs.get(&key).await.unwrap(), Bytes::from_static(b"abc"));
        assert_eq!(blobs.head(&key).await.unwrap().size, 3);
        let read = blobs.read(&key, Some(1..3)).await.unwrap();
        assert_eq!((read.size, read.range.clone()), (3, 1..3));
        let got: Vec<Bytes> = read.bytes.try_collect().await.unwrap();
        assert_eq!(got.concat(), b"bc");
        blobs
            .put(&BlobKey::from("run/artifacts/sub/x.bin"), vec![0u8; 5])
            .await
            .unwrap();
        let listing = blobs
            .list_dir(&BlobKey::from("run/artifacts"))
            .await
            .unwrap();
        assert_eq!(listing.folders, vec!["sub".to_string()]);
        assert_eq!(listing.files, vec![("notes.txt".to_string(), 3)]);
        blobs
            .delete_all(&BlobKey::from("run/artifacts"))
            .await
            .unwrap();
        assert!(matches!(blobs.get(&key).await, Err(BlobError::NotFound)));
        // Deleting what is gone is no error.
        blobs.delete_all(&key).await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
