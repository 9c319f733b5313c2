//! Blobs on the local disk: `<root>/tmp/<random>` while temporary, then
//! `<root>/<hash of DID>/<CID>`, or `<root>/quarantine/<hash of DID>/<CID>` while taken down;
//! moves are renames (atomic) followed by fsync.
//!
//! An upload is not synced when it is received but when a record first references it
//! ([`BlobStore::make_permanent`], before the record's commit): most of a 1 MiB upload's time
//! was its fsync, and an upload no record takes up is collected unsynced. Until then a process
//! crash loses nothing (the bytes are in the page cache); a machine crash may cut the file
//! short, which is why a temporary file older than the running kernel is checked against its
//! CID before it becomes permanent.

use aurora_atproto::syntax::Did;
use std::path::{Path, PathBuf};

use cid::Cid;
use futures_util::StreamExt;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::io::{IoSlice, Write};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::{BlobError, BlobStore, ByteStream, Digesting, TempBlob};

/// How much of an upload is gathered before it goes to the file, in one hand-off to a blocking
/// thread: written as it came off the network, chunk by chunk through tokio's file, a 1 MiB
/// upload took dozens of hand-offs, and their thread switches cost more CPU than hashing it.
const WRITE_BATCH: usize = 256 * 1024;

pub struct DiskBlobStore {
    root: PathBuf,
}

impl DiskBlobStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
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

    /// Where a permanent blob's file is.
    pub fn blob_path(&self, did: &Did, cid: &Cid) -> PathBuf {
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

/// Makes the temporary file at `path` durable, once its bytes are known to be `cid`'s: checked
/// when the file may predate a machine crash (see the module's note). A file already moved (a
/// retried call) is left to the move.
fn settle(path: &Path, cid: &Cid) -> Result<(), BlobError> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if written_before_boot(&file.metadata()?) {
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        if hasher.finalize().as_slice() != cid.hash().digest() {
            return Err(BlobError::Damaged(cid.to_string()));
        }
    }
    file.sync_all()?;
    Ok(())
}

/// Whether the file was last written before the running kernel started, so that a crash since
/// may have lost what was not synced. Taken as so wherever the boot time is unknown.
fn written_before_boot(metadata: &std::fs::Metadata) -> bool {
    match (boot_time(), metadata.modified()) {
        (Some(boot), Ok(modified)) => modified < boot,
        _ => true,
    }
}

/// When the running kernel started, from `/proc/stat`'s `btime` (whole seconds since the epoch),
/// rounded up: a file written in the boot's first second counts as older, which only costs a
/// check.
fn boot_time() -> Option<std::time::SystemTime> {
    static BOOT: std::sync::OnceLock<Option<std::time::SystemTime>> = std::sync::OnceLock::new();
    *BOOT.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let seconds: u64 = stat.lines().find_map(|line| line.strip_prefix("btime "))?.trim().parse().ok()?;
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds + 1))
    })
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

/// The file's bytes, or `length` of them from `start`; `None` when there is no such file.
async fn read(path: &Path, range: Option<(u64, u64)>) -> Result<Option<ByteStream>, BlobError> {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let (start, length) = range.unwrap_or((0, u64::MAX));
    file.seek(std::io::SeekFrom::Start(start)).await?;
    Ok(Some(ReaderStream::with_capacity(file.take(length), 64 * 1024).boxed()))
}

async fn sync_dir(dir: &Path) {
    if let Ok(handle) = tokio::fs::File::open(dir).await {
        let _ = handle.sync_all().await;
    }
}

/// Writes the chunks as they came off the network, without gathering them into one buffer.
fn write_chunks(file: &mut std::fs::File, chunks: &[bytes::Bytes]) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|chunk| IoSlice::new(chunk)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match file.write_vectored(rest)? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => IoSlice::advance_slices(&mut rest, n),
        }
    }
    Ok(())
}

impl BlobStore for DiskBlobStore {
    async fn put_temp(&self, mut body: ByteStream, limit: u64) -> Result<TempBlob, BlobError> {
        let dir = self.root.join("tmp");
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        let key = hex::encode(raw);
        let path = dir.join(&key);
        let mut digest = Digesting::new(limit);
        // One batch is written while the next is read and hashed.
        let mut writing: Option<tokio::task::JoinHandle<std::io::Result<std::fs::File>>> = None;
        let result: Result<(), BlobError> = async {
            let mut file: Option<std::fs::File> = None;
            let (mut batch, mut batched) = (Vec::new(), 0);
            loop {
                let chunk = body.next().await.transpose().map_err(|e| BlobError::Read(e.to_string()))?;
                let last = chunk.is_none();
                if let Some(chunk) = chunk {
                    digest.update(&chunk)?;
                    batched += chunk.len();
                    batch.push(chunk);
                    if batched < WRITE_BATCH {
                        continue;
                    }
                }
                if let Some(previous) = writing.take() {
                    file = Some(previous.await.map_err(std::io::Error::other)??);
                }
                let (dir, path, held, chunks) = (dir.clone(), path.clone(), file.take(), std::mem::take(&mut batch));
                batched = 0;
                writing = Some(tokio::task::spawn_blocking(move || {
                    let mut open = match held {
                        Some(open) => open,
                        None => {
                            std::fs::create_dir_all(&dir)?;
                            std::fs::File::create(&path)?
                        }
                    };
                    write_chunks(&mut open, &chunks)?;
                    Ok(open)
                }));
                if last {
                    return Ok(());
                }
            }
        }
        .await;
        // The last batch, or the one still being written when the upload failed: awaited before
        // the file is removed, so that it is not created again after.
        let written = match writing.take() {
            Some(last) => last.await.map_err(std::io::Error::other).and_then(|r| r).map(drop),
            None => Ok(()),
        };
        if let Err(e) = result.and(written.map_err(BlobError::from)) {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
        let (cid, size, head) = digest.finish();
        Ok(TempBlob { key, cid, size, head })
    }

    async fn make_permanent(&self, key: &str, did: &Did, cid: &Cid) -> Result<(), BlobError> {
        let from = self.temp_path(key)?;
        // The same bytes uploaded again stay in quarantine while the blob is taken down.
        if tokio::fs::try_exists(self.quarantined_path(did, cid)).await? {
            return remove_file(&from).await;
        }
        let (temp, expected) = (from.clone(), *cid);
        tokio::task::spawn_blocking(move || settle(&temp, &expected)).await.map_err(std::io::Error::other)??;
        move_into(&from, &self.blob_path(did, cid), &self.account_dir(did), false).await
    }

    async fn get(&self, did: &Did, cid: &Cid, range: Option<(u64, u64)>) -> Result<Option<ByteStream>, BlobError> {
        read(&self.blob_path(did, cid), range).await
    }

    async fn get_quarantined(&self, did: &Did, cid: &Cid) -> Result<Option<ByteStream>, BlobError> {
        read(&self.quarantined_path(did, cid), None).await
    }

    async fn exists(&self, did: &Did, cid: &Cid) -> Result<bool, BlobError> {
        Ok(tokio::fs::try_exists(self.blob_path(did, cid)).await?)
    }

    async fn is_quarantined(&self, did: &Did, cid: &Cid) -> Result<bool, BlobError> {
        Ok(tokio::fs::try_exists(self.quarantined_path(did, cid)).await?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const BYTES: &[u8] = b"the bytes of an upload that a machine crash may cut short";

    fn body(bytes: &'static [u8]) -> ByteStream {
        futures_util::stream::iter([Ok(bytes::Bytes::from_static(bytes))]).boxed()
    }

    /// Rewrites the temporary file as `bytes`, last written long before this boot.
    fn rewrite_before_boot(path: &Path, bytes: &[u8]) {
        std::fs::write(path, bytes).expect("rewrite");
        let file = std::fs::File::options().write(true).open(path).expect("open");
        file.set_modified(UNIX_EPOCH + Duration::from_secs(1_000_000)).expect("set the time");
    }

    /// `count` chunks of 100 KiB, each of its own byte.
    fn chunks(count: u8) -> (ByteStream, Vec<u8>) {
        let chunks: Vec<bytes::Bytes> = (0..count).map(|i| bytes::Bytes::from(vec![i; 100 * 1024])).collect();
        let whole = chunks.concat();
        (futures_util::stream::iter(chunks.into_iter().map(Ok)).boxed(), whole)
    }

    #[tokio::test]
    async fn an_upload_of_several_batches_is_stored_whole_and_in_order() {
        let root = tempfile::tempdir().expect("temp dir");
        let store = DiskBlobStore::new(root.path());
        let (stream, whole) = chunks(12);
        let temp = store.put_temp(stream, 2 << 20).await.expect("upload");
        assert_eq!(std::fs::read(store.temp_path(&temp.key).expect("path")).expect("read"), whole);
        assert_eq!(temp.size, whole.len() as u64);
        let expected = aurora_atproto::cids::from_sha256(aurora_atproto::cids::RAW, Sha256::digest(&whole).into());
        assert_eq!(temp.cid, expected);
    }

    #[tokio::test]
    async fn an_upload_past_the_limit_leaves_no_file_behind() {
        let root = tempfile::tempdir().expect("temp dir");
        let store = DiskBlobStore::new(root.path());
        // Past the limit after several batches have gone to the file.
        let (stream, _) = chunks(12);
        let refused = store.put_temp(stream, 1 << 20).await;
        assert!(matches!(refused, Err(BlobError::TooLarge(_))), "{refused:?}");
        let left: Vec<_> = std::fs::read_dir(root.path().join("tmp")).expect("tmp").collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[tokio::test]
    async fn an_upload_older_than_the_running_kernel_is_checked_before_it_becomes_permanent() {
        let root = tempfile::tempdir().expect("temp dir");
        let store = DiskBlobStore::new(root.path());
        let did: Did = "did:plc:abcdefghijklmnopqrstuvwx".parse().expect("did");
        let temp = store.put_temp(body(BYTES), 1 << 20).await.expect("upload");
        let path = store.temp_path(&temp.key).expect("path");

        // As a machine crash can leave it: cut short, last written before the running kernel.
        rewrite_before_boot(&path, &BYTES[..10]);
        let moved = store.make_permanent(&temp.key, &did, &temp.cid).await;
        assert!(matches!(moved, Err(BlobError::Damaged(ref cid)) if *cid == temp.cid.to_string()), "{moved:?}");
        assert!(!store.exists(&did, &temp.cid).await.expect("exists"), "a damaged upload never becomes the blob");

        // Whole, as old, it is checked and moved.
        rewrite_before_boot(&path, BYTES);
        store.make_permanent(&temp.key, &did, &temp.cid).await.expect("moved");
        let stored = std::fs::read(store.blob_path(&did, &temp.cid)).expect("permanent file");
        assert_eq!(stored, BYTES);
        assert!(!path.exists(), "the temporary file is gone");
        // A retried call finds it already moved.
        store.make_permanent(&temp.key, &did, &temp.cid).await.expect("retried");
    }
}
