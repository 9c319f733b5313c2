//! A CAR put aside on disk while an import verifies and stores it. The file arrives in one
//! order and the tree names its blocks in another, so the blocks have to be somewhere they
//! can be read back at will; holding them in memory would make the server's footprint as big
//! as the largest repository anyone imports. They go to an unnamed temporary file instead
//! (removed with its last handle, even should the process die), and memory keeps only where
//! each block is: some fifty bytes a block.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::Path;

use bytes::Bytes;
use cid::Cid;
use tokio::io::{AsyncRead, AsyncWriteExt, BufWriter};

use aurora_atproto::car::{CarError, CarLimits, CarReader};

/// A block's name, compactly: its codec and its sha2-256 digest (the CAR reader refuses every
/// other hash).
type BlockKey = (u64, [u8; 32]);

fn key(cid: &Cid) -> Option<BlockKey> {
    let digest: [u8; 32] = cid.hash().digest().try_into().ok()?;
    Some((cid.codec(), digest))
}

/// Why a CAR could not be staged.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The CAR is malformed, over the limits, or a block does not match its CID.
    #[error(transparent)]
    Car(#[from] CarError),
    /// The temporary file could not be written.
    #[error("cannot stage the CAR on disk: {0}")]
    Disk(#[source] std::io::Error),
}

pub struct StagedCar {
    file: std::fs::File,
    /// Where each block is in the file: offset and length.
    index: HashMap<BlockKey, (u64, u32)>,
    root: Cid,
}

impl StagedCar {
    /// Reads the CAR from `reader` under `limits` into a temporary file in `dir`, checking
    /// every block against its CID on the way.
    pub async fn read<R: AsyncRead + Unpin + Send>(
        reader: R,
        limits: CarLimits,
        dir: &Path,
    ) -> Result<StagedCar, StageError> {
        let file = tempfile::tempfile_in(dir).map_err(StageError::Disk)?;
        let copy = file.try_clone().map_err(StageError::Disk)?;
        let mut out = BufWriter::with_capacity(256 * 1024, tokio::fs::File::from_std(copy));
        let mut car = CarReader::new(reader, limits).await?;
        let mut index = HashMap::new();
        let mut offset = 0u64;
        while let Some((cid, bytes)) = car.next_block().await? {
            let Some(key) = key(&cid) else { return Err(CarError::UnsupportedHash(cid).into()) };
            if index.contains_key(&key) {
                continue;
            }
            out.write_all(&bytes).await.map_err(StageError::Disk)?;
            // Blocks are capped far below 4 GiB by the reader's limits.
            let len = u32::try_from(bytes.len())
                .map_err(|_| CarError::BlockTooLarge { size: bytes.len(), max: limits.max_block_size })?;
            index.insert(key, (offset, len));
            offset += u64::from(len);
        }
        out.flush().await.map_err(StageError::Disk)?;
        Ok(StagedCar { file, index, root: car.root() })
    }

    /// The CAR's root: the repository's commit.
    pub fn root(&self) -> Cid {
        self.root
    }

    /// The block named `cid`, read back from the file; `None` when the CAR lacked it. Reads
    /// from the disk: call it where blocking is fine.
    pub fn get(&self, cid: &Cid) -> Result<Option<Bytes>, CarError> {
        let Some(&(offset, len)) = key(cid).and_then(|key| self.index.get(&key)) else { return Ok(None) };
        let mut bytes = vec![0; len as usize];
        self.file.read_exact_at(&mut bytes, offset)?;
        Ok(Some(Bytes::from(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_atproto::blockstore::BlockMap;
    use aurora_atproto::car::{car_bytes, CarWriter};
    use aurora_atproto::cids;

    #[tokio::test]
    async fn every_block_reads_back_as_it_was_and_nothing_else_is_there() {
        let dir = tempfile::tempdir().expect("a directory");
        let blocks: BlockMap = (0..50u8)
            .map(|n| Bytes::from(vec![n; usize::from(n) * 97 + 1]))
            .map(|bytes| (cids::for_raw(&bytes), bytes))
            .collect();
        let root = *blocks.keys().next().expect("a block");
        // The same block twice is kept once.
        let mut writer = CarWriter::new(Vec::new(), root).await.expect("a writer");
        for (cid, bytes) in blocks.iter().chain(blocks.iter().take(3)) {
            writer.write_block(*cid, bytes).await.expect("written");
        }
        let doubled = writer.finish().await.expect("a CAR");

        let staged = StagedCar::read(&doubled[..], CarLimits::default(), dir.path()).await.expect("staged");
        assert_eq!((staged.root(), staged.index.len()), (root, blocks.len()));
        for (cid, bytes) in &blocks {
            assert_eq!(staged.get(cid).expect("read").as_ref(), Some(bytes));
        }
        let absent = cids::for_raw(b"never sent");
        assert_eq!(staged.get(&absent).expect("read"), None);
        assert_eq!(std::fs::read_dir(dir.path()).expect("listing").count(), 0, "the file has no name");
    }

    #[tokio::test]
    async fn a_corrupted_block_is_refused_while_staging() {
        let dir = tempfile::tempdir().expect("a directory");
        let bytes = Bytes::from_static(b"some block");
        let car = car_bytes(cids::for_raw(&bytes), BlockMap::from([(cids::for_raw(&bytes), bytes)])).await;
        let mut car = car.expect("a CAR");
        let last = car.len() - 1;
        car[last] ^= 1;
        let error = StagedCar::read(&car[..], CarLimits::default(), dir.path()).await.err().expect("refused");
        assert!(matches!(error, StageError::Car(CarError::HashMismatch(_))), "{error}");
    }
}
