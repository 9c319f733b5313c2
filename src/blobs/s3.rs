//! Blobs in an S3-compatible object store, through the `object_store` crate (request signing,
//! multipart uploads, retries). The layout is the reference PDS's, `blocks/<did>/<cid>` and
//! `quarantine/<did>/<cid>`, so a bucket it filled can be served as it is; uploads wait under
//! `tmp/<random>` until a record claims them. Every replica shares the bucket, so an upload
//! received by one can be made permanent by another.
//!
//! An upload is streamed: it is sent in parts of [`PART_BYTES`] (S3's smallest), one part in
//! flight while the next fills, so an upload holds at most two parts in memory however large it
//! is, and at most `uploads` of them run at once.

use aurora_atproto::syntax::Did;
use std::sync::Arc;
use std::time::Duration;

use cid::Cid;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore, PutPayload};
use rand::RngCore;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use super::{BlobError, BlobStore, ByteStream, Digesting, TempBlob};

/// S3's smallest multipart part (but the last).
const PART_BYTES: usize = 5 * 1024 * 1024;

/// The `PDS_BLOBSTORE_S3_*` settings.
#[derive(Clone, Debug)]
pub struct S3Config {
    pub bucket: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub force_path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<crate::config::Secret>,
    /// Put before every key, for a bucket shared with other data (`AURORA_BLOBSTORE_S3_PREFIX`).
    pub prefix: Option<String>,
    pub request_timeout: Option<Duration>,
    /// Uploads streamed to the store at once (`AURORA_BLOBSTORE_S3_UPLOADS`).
    pub uploads: usize,
}

pub struct S3BlobStore {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    described: String,
    uploads: Semaphore,
}

impl S3BlobStore {
    pub fn new(config: &S3Config) -> Result<S3BlobStore, BlobError> {
        let mut options = ClientOptions::new().with_allow_http(true);
        if let Some(timeout) = config.request_timeout {
            options = options.with_timeout(timeout);
        }
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(config.region.as_deref().unwrap_or("us-east-1"))
            .with_client_options(options);
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            builder = builder.with_access_key_id(id).with_secret_access_key(secret.expose());
        }
        match &config.endpoint {
            Some(endpoint) if !config.force_path_style => {
                // The bucket goes in the host name, as the AWS SDK does for a custom endpoint.
                let mut url = url::Url::parse(endpoint)
                    .map_err(|e| BlobError::Io(std::io::Error::other(format!("PDS_BLOBSTORE_S3_ENDPOINT: {e}"))))?;
                let host = url.host_str().unwrap_or_default().to_owned();
                url.set_host(Some(&format!("{}.{host}", config.bucket)))
                    .map_err(|e| BlobError::Io(std::io::Error::other(format!("PDS_BLOBSTORE_S3_ENDPOINT: {e}"))))?;
                builder =
                    builder.with_endpoint(url.as_str().trim_end_matches('/')).with_virtual_hosted_style_request(true);
            }
            Some(endpoint) => builder = builder.with_endpoint(endpoint),
            None => builder = builder.with_virtual_hosted_style_request(!config.force_path_style),
        }
        let prefix = config.prefix.as_deref().unwrap_or_default().trim_matches('/').to_owned();
        let described = match &config.endpoint {
            Some(endpoint) => format!("bucket {} at {endpoint}", config.bucket),
            None => format!("bucket {}", config.bucket),
        };
        Ok(S3BlobStore {
            store: Arc::new(builder.build()?),
            prefix,
            described,
            uploads: Semaphore::new(config.uploads.max(1)),
        })
    }

    pub fn describe(&self) -> &str {
        &self.described
    }

    fn key(&self, parts: &[&str]) -> Path {
        let joined = parts.join("/");
        if self.prefix.is_empty() {
            Path::from(joined)
        } else {
            Path::from(format!("{}/{joined}", self.prefix))
        }
    }

    fn temp_key(&self, key: &str) -> Result<Path, BlobError> {
        // Temporary keys are generated here as hex; anything else is refused outright.
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BlobError::Io(std::io::Error::other("malformed temporary blob key")));
        }
        Ok(self.key(&["tmp", key]))
    }

    fn stored_key(&self, did: &Did, cid: &Cid) -> Path {
        self.key(&["blocks", did.as_str(), &cid.to_string()])
    }

    fn quarantined_key(&self, did: &Did, cid: &Cid) -> Path {
        self.key(&["quarantine", did.as_str(), &cid.to_string()])
    }

    async fn read(&self, path: &Path, range: Option<(u64, u64)>) -> Result<Option<ByteStream>, BlobError> {
        let options = GetOptions {
            range: range.map(|(start, length)| GetRange::Bounded(start..start.saturating_add(length))),
            ..GetOptions::default()
        };
        match self.store.get_opts(path, options).await {
            Ok(found) => Ok(Some(found.into_stream().map_err(std::io::Error::other).boxed())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn present(&self, path: &Path) -> Result<bool, BlobError> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn remove(&self, path: &Path) -> Result<(), BlobError> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Copies `from` to `to` and removes `from`. A source already gone is no error when the
    /// target is there (a retried move), nor at all when `missing_ok`.
    async fn rename(&self, from: &Path, to: &Path, missing_ok: bool) -> Result<(), BlobError> {
        match self.store.copy(from, to).await {
            Ok(()) => self.remove(from).await,
            Err(object_store::Error::NotFound { .. }) if missing_ok || self.present(to).await? => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn remove_prefix(&self, prefix: Path) -> Result<(), BlobError> {
        let locations = self.store.list(Some(&prefix)).map_ok(|meta| meta.location).boxed();
        let mut deleted = self.store.delete_stream(locations);
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

impl BlobStore for S3BlobStore {
    async fn put_temp(&self, mut body: ByteStream, limit: u64) -> Result<TempBlob, BlobError> {
        let _turn = self.uploads.acquire().await.map_err(|e| BlobError::Io(std::io::Error::other(e)))?;
        let key = random_hex(16);
        let mut writer =
            BufWriter::with_capacity(self.store.clone(), self.temp_key(&key)?, PART_BYTES).with_max_concurrency(1);
        let mut digest = Digesting::new(limit);
        let result: Result<(), BlobError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| BlobError::Read(e.to_string()))?;
                digest.update(&chunk)?;
                writer.write_all(&chunk).await?;
            }
            writer.shutdown().await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = writer.abort().await;
            return Err(e);
        }
        let (cid, size, head) = digest.finish();
        Ok(TempBlob { key, cid, size, head })
    }

    async fn make_permanent(&self, key: &str, did: &Did, cid: &Cid) -> Result<(), BlobError> {
        let from = self.temp_key(key)?;
        // The same bytes uploaded again stay in quarantine while the blob is taken down.
        if self.present(&self.quarantined_key(did, cid)).await? {
            return self.remove(&from).await;
        }
        self.rename(&from, &self.stored_key(did, cid), false).await
    }

    async fn get(&self, did: &Did, cid: &Cid, range: Option<(u64, u64)>) -> Result<Option<ByteStream>, BlobError> {
        self.read(&self.stored_key(did, cid), range).await
    }

    async fn get_quarantined(&self, did: &Did, cid: &Cid) -> Result<Option<ByteStream>, BlobError> {
        self.read(&self.quarantined_key(did, cid), None).await
    }

    async fn exists(&self, did: &Did, cid: &Cid) -> Result<bool, BlobError> {
        self.present(&self.stored_key(did, cid)).await
    }

    async fn is_quarantined(&self, did: &Did, cid: &Cid) -> Result<bool, BlobError> {
        self.present(&self.quarantined_key(did, cid)).await
    }

    async fn delete(&self, did: &Did, cid: &Cid) -> Result<(), BlobError> {
        self.remove(&self.stored_key(did, cid)).await?;
        self.remove(&self.quarantined_key(did, cid)).await
    }

    async fn delete_temp(&self, key: &str) -> Result<(), BlobError> {
        self.remove(&self.temp_key(key)?).await
    }

    async fn quarantine(&self, did: &Did, cid: &Cid) -> Result<(), BlobError> {
        self.rename(&self.stored_key(did, cid), &self.quarantined_key(did, cid), true).await
    }

    async fn release(&self, did: &Did, cid: &Cid) -> Result<(), BlobError> {
        self.rename(&self.quarantined_key(did, cid), &self.stored_key(did, cid), true).await
    }

    async fn probe(&self) -> Result<(), BlobError> {
        let path = self.key(&["tmp", &format!("probe-{}", random_hex(8))]);
        const PROBE: &[u8] = b"aurora readiness probe";
        self.store.put(&path, PutPayload::from_static(PROBE)).await?;
        let read = self.store.get(&path).await;
        let read = match read {
            Ok(found) => found.bytes().await,
            Err(e) => Err(e),
        };
        let removed = self.remove(&path).await;
        match read? {
            bytes if bytes.as_ref() == PROBE => removed,
            _ => Err(BlobError::Io(std::io::Error::other("the probe read back different bytes"))),
        }
    }

    async fn delete_account(&self, did: &Did) -> Result<(), BlobError> {
        self.remove_prefix(self.key(&["blocks", did.as_str()])).await?;
        self.remove_prefix(self.key(&["quarantine", did.as_str()])).await
    }
}
