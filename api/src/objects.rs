//! Object stores by location: a local folder (the default), `file://` URLs,
//! or `s3://bucket/prefix` (any S3-compatible service; credentials from the
//! usual `AWS_*` environment, other options from `artifacts.s3`).

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

fn s3_bucket(
    url: &url::Url,
    options: &BTreeMap<String, String>,
) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let bucket = url
        .host_str()
        .ok_or_else(|| anyhow::anyhow!("{url}: no bucket"))?;
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    for (k, v) in options {
        let key =
            AmazonS3ConfigKey::from_str(k).map_err(|e| anyhow::anyhow!("artifacts.s3.{k}: {e}"))?;
        b = b.with_config(key, v);
    }
    Ok(Arc::new(b.build()?))
}

/// The path part of a URL as an object path (`/a/b` → `a/b`).
fn url_path(url: &url::Url) -> anyhow::Result<Path> {
    let decoded = percent_encoding::percent_decode_str(url.path().trim_start_matches('/'))
        .decode_utf8()?
        .into_owned();
    Ok(Path::parse(decoded)?)
}

/// A store rooted at `location` (a folder, created if missing, or a URL).
pub fn open_root(
    location: &str,
    s3: &BTreeMap<String, String>,
) -> anyhow::Result<Arc<dyn ObjectStore>> {
    if !location.contains("://") {
        std::fs::create_dir_all(location)?;
        return Ok(Arc::new(LocalFileSystem::new_with_prefix(location)?));
    }
    let url = url::Url::parse(location)?;
    match url.scheme() {
        "s3" => {
            let prefix = url_path(&url)?;
            Ok(Arc::new(PrefixStore::new(s3_bucket(&url, s3)?, prefix)))
        }
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|_| anyhow::anyhow!("{location} is not a local path"))?;
            std::fs::create_dir_all(&path)?;
            Ok(Arc::new(LocalFileSystem::new_with_prefix(path)?))
        }
        other => {
            anyhow::bail!("{other}:// locations are not supported (use a folder, file:// or s3://)")
        }
    }
}

/// The store holding the object at `url` and its path there.
pub fn open_object(
    url: &str,
    s3: &BTreeMap<String, String>,
) -> anyhow::Result<(Arc<dyn ObjectStore>, Path)> {
    let parsed = url::Url::parse(url)?;
    match parsed.scheme() {
        "s3" => Ok((s3_bucket(&parsed, s3)?, url_path(&parsed)?)),
        "file" => {
            let path = parsed
                .to_file_path()
                .map_err(|_| anyhow::anyhow!("{url} is not a local path"))?;
            Ok((
                Arc::new(LocalFileSystem::new()),
                Path::from_absolute_path(path)?,
            ))
        }
        other => anyhow::bail!("{other}:// datasets are not supported (use s3:// or file://)"),
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
        assert!(open_root("gs://bucket/x", &opts).is_err());
        let bad = BTreeMap::from([("no_such_option".to_string(), "1".to_string())]);
        assert!(open_root("s3://bucket/prefix", &bad).is_err());
    }
}
