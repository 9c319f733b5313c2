//! Blobs on the local disk: `<root>/tmp/<random>` while temporary, then
//! `<root>/<hash of DID>/<CID>`, or `<root>/quarantine/<hash of DID>/<CID>` while taken down;
//! moves are renames (atomic) followed by fsync.

use aurora_atproto::syntax::Did;
use std::path::{Path, PathBuf};

use cid::Cid;
use futures_util::StreamExt;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{BlobError, BlobStore, TempBlob, HEAD_BYTES};

pub struct DiskBlobStore {
    root: PathBuf,
}

impl DiskBlobStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn temp_path(&self, key: &str) -> Result<PathBuf, BlobError> {
        // Temporary keys are generated here as hex; anything else is refused outright.
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BlobError::Io(std::io::Error::other("malformed temporary blob key")));
        }
        Ok(self.root.join("tmp").join(key))
    }

    fn account_dir(&self, did: &Did) -> PathBuf {
        let digest = Sha256::digest(did.as_str().as_bytes());
        self.root.join(hex::encode(&digest[..16]))
    }

    fn blob_path(&self, did: &Did, cid: &Cid) -> PathBuf {
        self.account_dir(did).join(cid.to_string())
    }

    fn quarantine_dir(&self, did: &Did) -> PathBuf {
        let digest = Sha256::digest(did.as_str().as_bytes());
        self.root.join("quarantine").join(hex::encode(&digest[..16]))
    }

    fn quarantined_path(&self, did: &Did, cid: &Cid) -> PathBuf {
        self.quarantine_dir(did).join(cid.to_string())
    }
}

/// Renames `from` to `to` inside `dir`; a file already moved (a retried call) is no error, nor,
/// when `missing_ok`, one that is in neither place.
async fn move_into(from: &Path, to: &Path, dir: &Path, missing_ok: bool) -> Result<(), BlobError> {
    tokio::fs::create_dir_all(dir).await?;
    match tokio::fs::rename(from, to).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !missing_ok && !tokio::fs::try_exists(to).await.unwrap_or(false) {
                return Err(e.into());
            }
        }
        Err(e) => return Err(e.into()),
    }
    sync_dir(dir).await;
    Ok(())
}

async fn remove_file(path: &Path) -> Result<(), BlobError> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

async fn remove_dir(path: &Path) -> Result<(), BlobError> {
    match tokio::fs::remove_dir_all(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

async fn sync_dir(dir: &Path) {
    if let Ok(handle) = tokio::fs::File::open(dir).await {
        let _ = handle.sync_all().await;
    }
}

impl BlobStore for DiskBlobStore {
    async fn put_temp(&self, body: poem::Body, limit: u64) -> Result<TempBlob, BlobError> {
        let dir = self.root.join("tmp");
        tokio::fs::create_dir_all(&dir).await?;
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        let key = hex::encode(raw);
        let path = dir.join(&key);
        let mut file = tokio::fs::File::create(&path).await?;
        // tokio buffers up to 2 MiB per file by default; many uploads at once would hold that
        // each. Network chunks are small, so a small buffer costs nothing in speed.
        file.set_max_buf_size(64 * 1024);
        let mut hasher = Sha256::new();
        let mut head = Vec::new();
        let mut size: u64 = 0;
        let mut stream = body.into_bytes_stream();
        let result: Result<(), BlobError> = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| BlobError::Read(e.to_string()))?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(BlobError::TooLarge(limit));
                }
                if head.len() < HEAD_BYTES {
                    let take = (HEAD_BYTES - head.len()).min(chunk.len());
                    head.extend_from_slice(&chunk[..take]);
                }
                hasher.update(&chunk);
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
            file.sync_all().await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            drop(file);
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
        let cid = aurora_atproto::cids::from_sha256(aurora_atproto::cids::RAW, hasher.finalize().into());
        Ok(TempBlob { key, cid, size, head })
    }

    async fn make_permanent(&self, key: &str, did: &Did, cid: &Cid) -> Result<(), BlobError> {
        let from = self.temp_path(key)?;
        // The same bytes uploaded again stay in quarantine while the blob is taken down.
        if tokio::fs::try_exists(self.quarantined_path(did, cid)).await? {
            return remove_file(&from).await;
        }
        move_into(&from, &self.blob_path(did, cid), &self.account_dir(did), false).await
    }

    async fn path(&self, did: &Did, cid: &Cid) -> Result<Option<PathBuf>, BlobError> {
        let path = self.blob_path(did, cid);
        Ok(tokio::fs::try_exists(&path).await?.then_some(path))
    }

    async fn delete(&self, did: &Did, cid: &Cid) -> Result<(), BlobError> {
        remove_file(&self.blob_path(did, cid)).await?;
        remove_file(&self.quarantined_path(did, cid)).await
    }

    async fn quarantine(&self, did: &Did, cid: &Cid) -> Result<(), BlobError> {
        move_into(&self.blob_path(did, cid), &self.quarantined_path(did, cid), &self.quarantine_dir(did), true).await
    }

    async fn release(&self, did: &Did, cid: &Cid) -> Result<(), BlobError> {
        move_into(&self.quarantined_path(did, cid), &self.blob_path(did, cid), &self.account_dir(did), true).await
    }

    async fn delete_temp(&self, key: &str) -> Result<(), BlobError> {
        remove_file(&self.temp_path(key)?).await
    }

    async fn probe(&self) -> Result<(), BlobError> {
        let dir = self.root.join("tmp");
        tokio::fs::create_dir_all(&dir).await?;
        let mut raw = [0u8; 8];
        rand::rng().fill_bytes(&mut raw);
        let path = dir.join(format!("probe-{}", hex::encode(raw)));
        let written = tokio::fs::write(&path, b"aurora readiness probe").await;
        let read = match written {
            Ok(()) => tokio::fs::read(&path).await,
            Err(e) => Err(e),
        };
        let removed = tokio::fs::remove_file(&path).await;
        match read? {
            bytes if bytes == b"aurora readiness probe" => Ok(removed?),
            _ => Err(BlobError::Io(std::io::Error::other("the probe read back different bytes"))),
        }
    }

    async fn delete_account(&self, did: &Did) -> Result<(), BlobError> {
        remove_dir(&self.account_dir(did)).await?;
        remove_dir(&self.quarantine_dir(did)).await
    }
}
