//! Object stores by location: a local folder (the default), `file://` URLs,
//! `s3://bucket/prefix` (any S3-compatible service), `gs://bucket/prefix`
//! (Google Cloud Storage) or `az://container/prefix` (Azure Blob Storage).
//! Credentials come from each provider's usual environment (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`); other options from `artifacts.options`, keyed
//! the way object_store names them (`aws_endpoint`, `google_service_account`,
//! `azure_storage_account_name`, …): each scheme takes the keys of its
//! prefix, and an unknown key of that prefix is an error.

mod nofollow;
mod port;

pub use nofollow::NoFollowFs;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
pub use port::{BlobError, BlobKey, BlobMeta, BlobRead, BlobWriter, Blobs, Listing, Written};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

/// The options of one provider: the keys starting with `prefix`.
fn options_with<'a>(
    options: &'a BTreeMap<String, String>,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a String, &'a String)> + 'a {
    options.iter().filter(move |(k, _)| k.starts_with(prefix))
}

fn bad_option(key: &str, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("artifacts.options.{key}: {e}")
}

/// The bucket (or container) of `url`, on its provider.
fn bucket(
    url: &url::Url,
    options: &BTreeMap<String, String>,
) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let name = url
        .host_str()
        .ok_or_else(|| anyhow::anyhow!("{url}: no bucket"))?;
    Ok(match url.scheme() {
        "s3" => {
            let mut b = AmazonS3Builder::from_env().with_bucket_name(name);
            for (k, v) in options_with(options, "aws_") {
                b = b.with_config(
                    AmazonS3ConfigKey::from_str(k).map_err(|e| bad_option(k, e))?,
                    v,
                );
            }
            Arc::new(b.build()?)
        }
        "gs" => {
            let mut b = GoogleCloudStorageBuilder::from_env().with_bucket_name(name);
            for (k, v) in options_with(options, "google_") {
                b = b.with_config(
                    GoogleConfigKey::from_str(k).map_err(|e| bad_option(k, e))?,
                    v,
                );
            }
            Arc::new(b.build()?)
        }
        "az" => {
            let mut b = MicrosoftAzureBuilder::from_env().with_container_name(name);
            for (k, v) in options_with(options, "azure_") {
                b = b.with_config(
                    AzureConfigKey::from_str(k).map_err(|e| bad_option(k, e))?,
                    v,
                );
            }
            Arc::new(b.build()?)
        }
        other => {
            anyhow::bail!("{other}:// is not an object store scheme (use s3://, gs:// or az://)")
        }
    })
}

/// The path part of a URL as an object path (`/a/b` → `a/b`).
fn url_path(url: &url::Url) -> anyhow::Result<Path> {
    let decoded = percent_encoding::percent_decode_str(url.path().trim_start_matches('/'))
        .decode_utf8()?
        .into_owned();
    Ok(Path::parse(decoded)?)
}

/// A store rooted at `location` (a folder, created if missing, or a URL).
/// A local folder never follows a symbolic link below its root ([`NoFollowFs`]).
pub fn open_root(
    location: &str,
    options: &BTreeMap<String, String>,
) -> anyhow::Result<Arc<dyn ObjectStore>> {
    if !location.contains("://") {
        std::fs::create_dir_all(location)?;
        return Ok(Arc::new(NoFollowFs::new(location)?));
    }
    let url = url::Url::parse(location)?;
    match url.scheme() {
        "s3" | "gs" | "az" => {
            let prefix = url_path(&url)?;
            Ok(Arc::new(PrefixStore::new(bucket(&url, options)?, prefix)))
        }
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|_| anyhow::anyhow!("{location} is not a local path"))?;
            std::fs::create_dir_all(&path)?;
            Ok(Arc::new(NoFollowFs::new(path)?))
        }
        other => {
            anyhow::bail!("{other}:// locations are not supported (use a folder, file:// or s3://)")
        }
    }
}

/// The store holding the object at `url` and its path there.
pub fn open_object(
    url: &str,
    options: &BTreeMap<String, String>,
) -> anyhow::Result<(Arc<dyn ObjectStore>, Path)> {
    let parsed = url::Url::parse(url)?;
    match parsed.scheme() {
        "s3" | "gs" | "az" => Ok((bucket(&parsed, options)?, url_path(&parsed)?)),
        "file" => {
            let path = parsed
                .to_file_path()
                .map_err(|_| anyhow::anyhow!("{url} is not a local path"))?;
            Ok((
                Arc::new(LocalFileSystem::new()),
                Path::from_absolute_path(path)?,
            ))
        }
        other => anyhow::bail!(
            "{other}:// objects are not supported (use s3://, gs://, az:// or file://)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_map_to_buckets_and_paths() {
        let opts = BTreeMap::from([
            ("aws_endpoint".to_string(), "http://127.0.0.1:9".to_string()),
            ("aws_region".to_string(), "us-east-1".to_string()),
            ("aws_allow_http".to_string(), "true".to_string()),
        ]);
        let (_, p) = open_object("s3://data/sets/chat%20v2.jsonl", &opts).unwrap();
        assert_eq!(p.as_ref(), "sets/chat v2.jsonl");
        assert!(open_object("ftp://x/y", &opts).is_err());
        // Each scheme takes its own keys; an unknown key of its prefix fails closed.
        let bad = BTreeMap::from([("aws_no_such_option".to_string(), "1".to_string())]);
        assert!(open_root("s3://bucket/prefix", &bad).is_err());
        let azure = BTreeMap::from([
            (
                "azure_storage_account_name".to_string(),
                "devstoreaccount1".to_string(),
            ),
            ("azure_storage_use_emulator".to_string(), "true".to_string()),
            ("aws_region".to_string(), "ignored-here".to_string()),
        ]);
        let (_, p) = open_object("az://models/runs/a.bpk", &azure).unwrap();
        assert_eq!(p.as_ref(), "runs/a.bpk");
    }
}
