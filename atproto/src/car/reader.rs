//! Reading CAR files under limits, verifying every block.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use cid::Cid;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

use super::CarError;
use crate::blockstore::BlockMap;
use crate::cids;

/// Bounds on what a CAR may make us read and hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarLimits {
    /// Largest block, in bytes (CID excluded). iroh-car refuses any section over 4 MiB
    /// regardless, so that is the effective ceiling.
    pub max_block_size: usize,
    /// Largest file, in bytes.
    pub max_total_size: u64,
    /// Most blocks.
    pub max_blocks: usize,
}

impl CarLimits {
    /// For a commit's CAR slice on the firehose: sync v1.1 caps a commit at 2 MB of blocks.
    pub const FIREHOSE: CarLimits =
        CarLimits { max_block_size: 1024 * 1024, max_total_size: 2 * 1024 * 1024, max_blocks: 10_000 };
}

impl Default for CarLimits {
    /// For repository imports: 2 MiB blocks (records are at most 1 MiB), 1 GiB and 10 million
    /// blocks in all.
    fn default() -> Self {
        CarLimits { max_block_size: 2 * 1024 * 1024, max_total_size: 1024 * 1024 * 1024, max_blocks: 10_000_000 }
    }
}

/// Reads a CAR v1 block by block. Each block comes out only after its bytes have been checked
/// against its CID.
pub struct CarReader<R> {
    inner: iroh_car::CarReader<Limited<R>>,
    limits: CarLimits,
    over_limit: Arc<AtomicBool>,
    blocks: usize,
}

impl<R: AsyncRead + Unpin + Send> CarReader<R> {
    /// Reads the header. Fails on a malformed header or one without roots.
    pub async fn new(reader: R, limits: CarLimits) -> Result<CarReader<R>, CarError> {
        let over_limit = Arc::new(AtomicBool::new(false));
        let limited = Limited { inner: reader, read: 0, max: limits.max_total_size, over_limit: over_limit.clone() };
        let inner = iroh_car::CarReader::new(limited).await.map_err(|error| translate(error, &limits, &over_limit))?;
        if inner.header().roots().is_empty() {
            return Err(CarError::MissingRoot);
        }
        Ok(CarReader { inner, limits, over_limit, blocks: 0 })
    }

    /// The roots the header lists; never empty.
    pub fn roots(&self) -> &[Cid] {
        self.inner.header().roots()
    }

    /// The first root: for a repository, the commit.
    pub fn root(&self) -> Cid {
        // `new` refused a header without roots.
        self.roots().first().copied().unwrap_or_default()
    }

    /// The next block, verified, or `None` at the end of the file.
    pub async fn next_block(&mut self) -> Result<Option<(Cid, Bytes)>, CarError> {
        let next = self.inner.next_block().await.map_err(|error| translate(error, &self.limits, &self.over_limit))?;
        let Some((cid, bytes)) = next else {
            return Ok(None);
        };
        self.blocks += 1;
        if self.blocks > self.limits.max_blocks {
            return Err(CarError::TooManyBlocks { max: self.limits.max_blocks });
        }
        if bytes.len() > self.limits.max_block_size {
            return Err(CarError::BlockTooLarge { size: bytes.len(), max: self.limits.max_block_size });
        }
        verify_block(&cid, &bytes)?;
        Ok(Some((cid, Bytes::from(bytes))))
    }
}

/// Checks that `bytes` hash to `cid`.
pub(crate) fn verify_block(cid: &Cid, bytes: &[u8]) -> Result<(), CarError> {
    let hash = cid.hash();
    if hash.code() != cids::SHA2_256 || hash.size() != 32 {
        return Err(CarError::UnsupportedHash(*cid));
    }
    if hash.digest() != Sha256::digest(bytes).as_slice() {
        return Err(CarError::HashMismatch(*cid));
    }
    Ok(())
}

/// Reads a whole CAR into memory: its first root and its blocks (duplicates collapse).
pub async fn read_car<R: AsyncRead + Unpin + Send>(reader: R, limits: CarLimits) -> Result<(Cid, BlockMap), CarError> {
    let mut car = CarReader::new(reader, limits).await?;
    let mut blocks = BlockMap::new();
    while let Some((cid, bytes)) = car.next_block().await? {
        blocks.insert(cid, bytes);
    }
    Ok((car.root(), blocks))
}

/// Turns iroh-car's stringly errors into ours, recognising the ones our limits caused.
fn translate(error: iroh_car::Error, limits: &CarLimits, over_limit: &AtomicBool) -> CarError {
    if over_limit.load(Ordering::Relaxed) {
        return CarError::TooLarge { max: limits.max_total_size };
    }
    match error {
        iroh_car::Error::LdReadTooLarge(size) => CarError::BlockTooLarge { size, max: limits.max_block_size },
        iroh_car::Error::Io(error) => CarError::Io(error),
        // iroh-car reports a root-less header only by this message.
        iroh_car::Error::Parsing(message) if message.contains("empty CAR") => CarError::MissingRoot,
        other => CarError::Malformed(other.to_string()),
    }
}

/// Counts the bytes read and fails once there are more than `max`, so a hostile stream cannot
/// make us read (or, through iroh-car's buffer, hold) without bound.
struct Limited<R> {
    inner: R,
    read: u64,
    max: u64,
    over_limit: Arc<AtomicBool>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Limited<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        // The read may overshoot by one buffer, which the reader already had to allocate.
        self.read += (buf.filled().len() - before) as u64;
        if self.read > self.max {
            self.over_limit.store(true, Ordering::Relaxed);
            return Poll::Ready(Err(io::Error::other("CAR exceeds its size limit")));
        }
        Poll::Ready(Ok(()))
    }
}
