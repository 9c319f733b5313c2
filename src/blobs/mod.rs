//! Blob storage. Uploads stream to a temporary file (never whole in memory) while their hash is
//! computed; a record that references a blob moves it to its permanent place. File names are
//! built only from hashes (the CID, and a hash of the DID), never from user strings.

mod disk;
mod gc;
pub mod refs;

pub use disk::DiskBlobStore;
pub use gc::{collect_garbage, release_unreferenced};

use aurora_atproto::syntax::Did;
use std::future::Future;
use std::path::PathBuf;

use cid::Cid;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("could not read the upload: {0}")]
    Read(String),
    #[error("blob storage failed: {0}")]
    Io(#[from] std::io::Error),
}

/// An upload received into temporary storage.
#[derive(Debug)]
pub struct TempBlob {
    pub key: String,
    pub cid: Cid,
    pub size: u64,
    /// The first bytes of the content, for sniffing its type and image dimensions.
    pub head: Vec<u8>,
}

/// Where blobs live. The disk store is the embedded default; an S3-compatible one fits the
/// same shape.
pub trait BlobStore: Send + Sync {
    /// Streams `body` into temporary storage, refusing more than `limit` bytes.
    fn put_temp(&self, body: poem::Body, limit: u64) -> impl Future<Output = Result<TempBlob, BlobError>> + Send;
    /// Moves a temporary blob to its permanent place for `did`.
    fn make_permanent(&self, key: &str, did: &Did, cid: &Cid) -> impl Future<Output = Result<(), BlobError>> + Send;
    /// The permanent blob's file, if present.
    fn path(&self, did: &Did, cid: &Cid) -> impl Future<Output = Result<Option<PathBuf>, BlobError>> + Send;
    fn delete(&self, did: &Did, cid: &Cid) -> impl Future<Output = Result<(), BlobError>> + Send;
    fn delete_temp(&self, key: &str) -> impl Future<Output = Result<(), BlobError>> + Send;
    /// Moves a taken-down blob out of reach ([`BlobStore::path`] no longer finds it), keeping
    /// its bytes for a reversal.
    fn quarantine(&self, did: &Did, cid: &Cid) -> impl Future<Output = Result<(), BlobError>> + Send;
    /// Puts a quarantined blob back.
    fn release(&self, did: &Did, cid: &Cid) -> impl Future<Output = Result<(), BlobError>> + Send;
    /// Writes, reads back and removes a small file: whether the store works (readiness).
    fn probe(&self) -> impl Future<Output = Result<(), BlobError>> + Send;
    /// Removes every permanent blob of `did` (a purged account), quarantined ones too.
    fn delete_account(&self, did: &Did) -> impl Future<Output = Result<(), BlobError>> + Send;
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
