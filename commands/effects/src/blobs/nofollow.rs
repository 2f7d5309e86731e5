//! A local folder store that never follows a symbolic link.
//!
//! `object_store`'s [`LocalFileSystem`] follows links on every operation, so a
//! link placed under the artifact root by anything else that writes there (a
//! shared volume, a restored backup, another tool) would turn a run's artifact
//! key into read, list and write access to whatever the link points at. This
//! store checks every component between the root and the object with
//! `symlink_metadata` before it delegates: an operation that would pass through
//! a link is refused with [`object_store::Error::PermissionDenied`] (logged),
//! and listings leave such entries out. The root itself is resolved once, when
//! the store opens, so an operator may point `artifacts.root` at a link.

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct NoFollowFs {
    inner: Arc<LocalFileSystem>,
    root: Arc<PathBuf>,
}

/// Why an object was refused: a link on its way.
#[derive(Debug, thiserror::Error)]
#[error("{0} is a symbolic link; the artifact store does not follow links")]
pub struct SymlinkRefused(pub String);

impl NoFollowFs {
    /// The store rooted at `root` (an existing folder).
    pub fn new(root: impl AsRef<std::path::Path>) -> Result<Self> {
        // The canonical root, as the inner store resolves it too.
        let canonical =
            std::fs::canonicalize(root.as_ref()).map_err(|e| object_store::Error::Generic {
                store: "NoFollowFs",
                source: Box::new(e),
            })?;
        let inner = LocalFileSystem::new_with_prefix(&canonical)?;
        let root = Arc::new(canonical);
        Ok(Self {
            inner: Arc::new(inner),
            root,
        })
    }

    /// The first component below the root on the way to `location` that is a
    /// link, if any. Components that do not exist yet end the walk.
    fn first_link(&self, location: &Path) -> Result<Option<PathBuf>> {
        let full = self.inner.path_to_filesystem(location)?;
        let Ok(rel) = full.strip_prefix(self.root.as_path()) else {
            return Ok(Some(full));
        };
        let mut at = PathBuf::from(self.root.as_path());
        for part in rel.components() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => return Ok(Some(at)),
                Ok(_) => {}
                Err(_) => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Refuses `location` when a link is on its way.
    fn check(&self, location: &Path) -> Result<()> {
        match self.first_link(location)? {
            None => Ok(()),
            Some(link) => {
                tracing::warn!(
                    object = %location,
                    link = %link.display(),
                    "artifact store: refused a path through a symbolic link"
                );
                Err(object_store::Error::PermissionDenied {
                    path: location.to_string(),
                    source: Box::new(SymlinkRefused(location.to_string())),
                })
            }
        }
    }

    /// Whether a listed entry may be shown (no link on its way); a refused one
    /// is logged once here.
    fn listable(&self, location: &Path) -> bool {
        self.check(location).is_ok()
    }
}

impl std::fmt::Display for NoFollowFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoFollowFs({})", self.root.display())
    }
}

#[async_trait]
impl ObjectStore for NoFollowFs {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.check(location)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.check(location)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.check(location)?;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        // Each location is checked before it reaches the inner store.
        let me = self.clone();
        let checked = locations
            .map(move |l| l.and_then(|p| me.check(&p).map(|()| p)))
            .boxed();
        self.inner.delete_stream(checked)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        if let Some(p) = prefix
            && let Err(e) = self.check(p)
        {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        let me = self.clone();
        self.inner
            .list(prefix)
            .filter(move |m| {
                let keep = match m {
                    Ok(m) => me.listable(&m.location),
                    Err(_) => true,
                };
                futures::future::ready(keep)
            })
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        if let Some(p) = prefix {
            self.check(p)?;
        }
        let mut listing = self.inner.list_with_delimiter(prefix).await?;
        listing.common_prefixes.retain(|p| self.listable(p));
        listing.objects.retain(|m| self.listable(&m.location));
        Ok(listing)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.inner.rename_opts(from, to, options).await
    }
}
