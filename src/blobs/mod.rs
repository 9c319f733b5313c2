//! Blob storage. Uploads stream into temporary storage (never whole in memory) while their hash
//! is computed; a record that references a blob moves it to its permanent place. Blobs live on
//! the local disk (the embedded default) or in an S3-compatible object store shared by every
//! replica. Names are built from hashes and validated identifiers (the CID, the DID), never from
//! user strings.

mod digest;
mod disk;
mod gc;
pub mod migrate;
pub mod refs;
mod s3;
pub mod served;
pub mod uploads;

pub use digest::Digesting;
pub use disk::DiskBlobStore;
pub use gc::{collect_garbage, release_unreferenced};
pub use s3::{S3BlobStore, S3Config};

use aurora_atproto::syntax::Did;
use std::future::Future;

use bytes::Bytes;
use cid::Cid;
use futures_util::stream::BoxStream;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("could not read the upload: {0}")]
    Read(String),
    #[error("blob storage failed: {0}")]
    Io(#[from] std::io::Error),
    /// A temporary upload that no longer holds the bytes it was received with (cut short by a
    /// machine crash before it was synced): to be uploaded again.
    #[error("the upload of blob {0} was lost; upload it again")]
    Damaged(String),
    #[error("the object store failed: {0}")]
    Store(#[from] object_store::Error),
}

/// A blob's bytes as they are read or received.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// An upload received into temporary storage.
#[derive(Debug)]
pub struct TempBlob {
    pub key: String,
    pub cid: Cid,
    pub size: u64,
    /// The first bytes of the content, for sniffing its type and image dimensions.
    pub head: Vec<u8>,
}

/// What every blob backend does.
pub trait BlobStore: Send + Sync {
    /// Streams `body` into temporary storage, refusing more than `limit` bytes.
    fn put_temp(&self, body: ByteStream, limit: u64) -> impl Future<Output = Result<TempBlob, BlobError>> + Send;
    /// Moves a temporary blob to its permanent place for `did`; a retried call is no error.
    fn make_permanent(&self, key: &str, did: &Did, cid: &Cid) -> impl Future<Output = Result<(), BlobError>> + Send;
    /// The permanent blob's bytes, or `length` of them from `start`; `None` when it is absent
    /// (or quarantined).
    fn get(
        &self,
        did: &Did,
        cid: &Cid,
        range: Option<(u64, u64)>,
    ) -> impl Future<Output = Result<Option<ByteStream>, BlobError>> + Send;
    /// Whether the permanent blob is there (not quarantined).
    fn exists(&self, did: &Did, cid: &Cid) -> impl Future<Output = Result<bool, BlobError>> + Send;
    /// A quarantined blob's bytes (for moving them to another store).
    fn get_quarantined(
        &self,
        did: &Did,
        cid: &Cid,
    ) -> impl Future<Output = Result<Option<ByteStream>, BlobError>> + Send;
    /// Whether the blob is in quarantine.
    fn is_quarantined(&self, did: &Did, cid: &Cid) -> impl Future<Output = Result<bool, BlobError>> + Send;
    fn delete(&self, did: &Did, cid: &Cid) -> impl Future<Output = Result<(), BlobError>> + Send;
    fn delete_temp(&self, key: &str) -> impl Future<Output = Result<(), BlobError>> + Send;
    /// Moves a taken-down blob out of reach ([`BlobStore::get`] no longer finds it), keeping
    /// its bytes for a reversal.
    fn quarantine(&self, did: &Did, cid: &Cid) -> impl Future<Output = Result<(), BlobError>> + Send;
    /// Puts a quarantined blob back.
    fn release(&self, did: &Did, cid: &Cid) -> impl Future<Output = Result<(), BlobError>> + Send;
    /// Writes, reads back and removes a small object: whether the store works (readiness).
    fn probe(&self) -> impl Future<Output = Result<(), BlobError>> + Send;
    /// Removes every permanent blob of `did` (a purged account), quarantined ones too.
    fn delete_account(&self, did: &Did) -> impl Future<Output = Result<(), BlobError>> + Send;
}

/// The configured backend.
pub enum Blobs {
    Disk(DiskBlobStore),
    S3(S3BlobStore),
}

/// Calls the same method on whichever backend is configured.
macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Blobs::Disk($store) => $call.await,
            Blobs::S3($store) => $call.await,
        }
    };
}

impl BlobStore for Blobs {
    async fn put_temp(&self, body: ByteStream, limit: u64) -> Result<TempBlob, BlobError> {
        dispatch!(self, store => store.put_temp(body, limit))
    }
    async fn make_permanent(&self, key: &str, did: &Did, cid: &Cid) -> Result<(), BlobError> {
        dispatch!(self, store => store.make_permanent(key, did, cid))
    }
    async fn get(&self, did: &Did, cid: &Cid, range: Option<(u64, u64)>) -> Result<Option<ByteStream>, BlobError> {
        dispatch!(self, store => store.get(did, cid, range))
    }
    async fn exists(&self, did: &Did, cid: &Cid) -> Result<bool, BlobError> {
        dispatch!(self, store => store.exists(did, cid))
    }
    async fn get_quarantined(&self, did: &Did, cid: &Cid) -> Result<Option<ByteStream>, BlobError> {
        dispatch!(self, store => store.get_quarantined(did, cid))
    }
    async fn is_quarantined(&self, did: &Did, cid: &Cid) -> Result<bool, BlobError> {
        dispatch!(self, store => store.is_quarantined(did, cid))
    }
    async fn delete(&self, did: &Did, cid: &Cid) -> Result<(), BlobError> {
        dispatch!(self, store => store.delete(did, cid))
    }
    async fn delete_temp(&self, key: &str) -> Result<(), BlobError> {
        dispatch!(self, store => store.delete_temp(key))
    }
    async fn quarantine(&self, did: &Did, cid: &Cid) -> Result<(), BlobError> {
        dispatch!(self, store => store.quarantine(did, cid))
    }
    async fn release(&self, did: &Did, cid: &Cid) -> Result<(), BlobError> {
        dispatch!(self, store => store.release(did, cid))
    }
    async fn probe(&self) -> Result<(), BlobError> {
        dispatch!(self, store => store.probe())
    }
    async fn delete_account(&self, did: &Did) -> Result<(), BlobError> {
        dispatch!(self, store => store.delete_account(did))
    }
}

impl Blobs {
    /// The backend the configuration names: S3 when a bucket is set, else the disk.
    pub fn from_config(config: &crate::config::Config) -> Result<Blobs, BlobError> {
        match &config.blobstore_s3 {
            Some(s3) => Ok(Blobs::S3(S3BlobStore::new(s3)?)),
            None => {
                std::fs::create_dir_all(&config.blobstore_dir)?;
                Ok(Blobs::Disk(DiskBlobStore::new(&config.blobstore_dir)))
            }
        }
    }

    /// A short name for logs and the migration's messages.
    pub fn describe(&self) -> String {
        match self {
            Blobs::Disk(store) => format!("disk ({})", store.root().display()),
            Blobs::S3(store) => format!("S3 ({})", store.describe()),
        }
    }
}

/// How many leading bytes are kept for sniffing: enough for every image header `imagesize` reads.
pub const HEAD_BYTES: usize = 64 * 1024;

/// The MIME type of the content, from its magic bytes; the client's claim only when the bytes
/// say nothing.
pub fn sniff_mime(head: &[u8], claimed: &str) -> String {
    match infer::get(head) {
        Some(kind) => kind.mime_type().to_owned(),
        None if !claimed.is_empty() && claimed != "*/*" => {
            claimed.split(';').next().unwrap_or(claimed).trim().to_lowercase()
        }
        None => "application/octet-stream".to_owned(),
    }
}

/// Width and height of an image, when the head holds a readable image header.
pub fn image_dimensions(head: &[u8]) -> Option<(i32, i32)> {
    let size = imagesize::blob_size(head).ok()?;
    Some((i32::try_from(size.width).ok()?, i32::try_from(size.height).ok()?))
}
