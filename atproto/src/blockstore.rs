//! Content-addressed block storage behind the repository: MST nodes, records and commits, each
//! stored under the CID of its bytes.
//!
//! The server keeps blocks in its database and reads them inside the transaction that writes a
//! commit, so every method is asynchronous and takes `&self`: an implementation wraps a
//! connection or transaction handle (e.g. a SeaORM `&DatabaseTransaction` plus the account's
//! DID) and needs no interior mutability of its own. The futures are declared `Send` so that a
//! handler which awaits them can itself run on a multi-threaded runtime; an implementation may
//! still write plain `async fn` in its `impl` block.
//!
//! Stores do not verify that bytes hash to their CID: blocks arriving from outside are verified
//! where they enter (the CAR reader), and blocks we produce are hashed as we make them.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{PoisonError, RwLock};

use bytes::Bytes;
use cid::Cid;

/// Blocks keyed by CID. Ordered, so that anything built from one (a CAR slice, a test
/// expectation) comes out the same every time.
pub type BlockMap = BTreeMap<Cid, Bytes>;

/// Why a store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum BlockStoreError {
    /// The backend (e.g. the database) failed; the source says how.
    #[error("block storage failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl BlockStoreError {
    /// Wraps a backend error, for implementations outside this crate.
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        BlockStoreError::Backend(Box::new(error))
    }
}

/// Read and write access to a repository's blocks.
pub trait BlockStore: Send + Sync {
    /// The bytes stored under `cid`, or `None` when the store lacks it.
    fn get(&self, cid: &Cid) -> impl Future<Output = Result<Option<Bytes>, BlockStoreError>> + Send;

    /// Whether the store holds `cid`. The default fetches the block; a database should override
    /// it with an existence query.
    fn has(&self, cid: &Cid) -> impl Future<Output = Result<bool, BlockStoreError>> + Send {
        async move { Ok(self.get(cid).await?.is_some()) }
    }

    /// The blocks the store holds among `cids`; absent ones are simply left out, so the caller
    /// finds what is missing by comparing. The default asks one at a time; a database should
    /// override it with a single query.
    fn get_many(&self, cids: &[Cid]) -> impl Future<Output = Result<BlockMap, BlockStoreError>> + Send {
        async move {
            let mut found = BlockMap::new();
            for cid in cids {
                if let Some(bytes) = self.get(cid).await? {
                    found.insert(*cid, bytes);
                }
            }
            Ok(found)
        }
    }

    /// Stores `bytes` under `cid`. Storing a block that is already there is not an error.
    fn put(&self, cid: Cid, bytes: Bytes) -> impl Future<Output = Result<(), BlockStoreError>> + Send;

    /// Stores every block of `blocks`. The default puts them one at a time; a database should
    /// override it with a batched insert.
    fn put_many(&self, blocks: BlockMap) -> impl Future<Output = Result<(), BlockStoreError>> + Send {
        async move {
            for (cid, bytes) in blocks {
                self.put(cid, bytes).await?;
            }
            Ok(())
        }
    }
}

/// A store in memory: for tests, benchmarks, and holding the blocks of a CAR file while they
/// are verified.
#[derive(Debug, Default)]
pub struct MemoryBlockStore {
    // A lock rather than `&mut self` methods because the trait takes `&self`; it is never held
    // across an await.
    blocks: RwLock<BlockMap>,
}

impl MemoryBlockStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `blocks`.
    pub fn from_blocks(blocks: BlockMap) -> Self {
        MemoryBlockStore { blocks: RwLock::new(blocks) }
    }

    /// How many blocks the store holds.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the store holds no block.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Removes the block under `cid`, returning whether it was there; the server deletes blocks
    /// a commit no longer references, and tests mirror that.
    pub fn remove(&self, cid: &Cid) -> bool {
        self.write().remove(cid).is_some()
    }

    /// Every block, consuming the store.
    pub fn into_blocks(self) -> BlockMap {
        self.blocks.into_inner().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of every block.
    pub fn to_block_map(&self) -> BlockMap {
        self.read().clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BlockMap> {
        // A panic while holding the lock cannot leave a map half-updated, so poisoning is moot.
        self.blocks.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BlockMap> {
        self.blocks.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BlockStore for MemoryBlockStore {
    async fn get(&self, cid: &Cid) -> Result<Option<Bytes>, BlockStoreError> {
        Ok(self.read().get(cid).cloned())
    }

    async fn has(&self, cid: &Cid) -> Result<bool, BlockStoreError> {
        Ok(self.read().contains_key(cid))
    }

    async fn get_many(&self, cids: &[Cid]) -> Result<BlockMap, BlockStoreError> {
        let blocks = self.read();
        Ok(cids.iter().filter_map(|cid| blocks.get(cid).map(|bytes| (*cid, bytes.clone()))).collect())
    }

    async fn put(&self, cid: Cid, bytes: Bytes) -> Result<(), BlockStoreError> {
        self.write().insert(cid, bytes);
        Ok(())
    }

    async fn put_many(&self, blocks: BlockMap) -> Result<(), BlockStoreError> {
        self.write().extend(blocks);
        Ok(())
    }
}

impl<T: BlockStore> BlockStore for &T {
    fn get(&self, cid: &Cid) -> impl Future<Output = Result<Option<Bytes>, BlockStoreError>> + Send {
        (**self).get(cid)
    }

    fn has(&self, cid: &Cid) -> impl Future<Output = Result<bool, BlockStoreError>> + Send {
        (**self).has(cid)
    }

    fn get_many(&self, cids: &[Cid]) -> impl Future<Output = Result<BlockMap, BlockStoreError>> + Send {
        (**self).get_many(cids)
    }

    fn put(&self, cid: Cid, bytes: Bytes) -> impl Future<Output = Result<(), BlockStoreError>> + Send {
        (**self).put(cid, bytes)
    }

    fn put_many(&self, blocks: BlockMap) -> impl Future<Output = Result<(), BlockStoreError>> + Send {
        (**self).put_many(blocks)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;
    use crate::cids;

    #[tokio::test]
    async fn a_stored_block_comes_back_and_an_unknown_one_does_not() {
        let store = MemoryBlockStore::new();
        let bytes = Bytes::from_static(&[0xa0]);
        let cid = cids::for_dag_cbor(&bytes);
        let other = cids::for_dag_cbor(&[0x80]);
        store.put(cid, bytes.clone()).await.unwrap();

        assert_eq!(store.get(&cid).await.unwrap(), Some(bytes.clone()));
        assert!(store.has(&cid).await.unwrap());
        assert_eq!(store.get(&other).await.unwrap(), None);
        assert!(!store.has(&other).await.unwrap());
        let many = store.get_many(&[cid, other]).await.unwrap();
        assert_eq!(many.len(), 1);
        assert_eq!(many.get(&cid), Some(&bytes));
    }

    #[tokio::test]
    async fn putting_the_same_block_twice_keeps_one_copy() {
        let store = MemoryBlockStore::new();
        let bytes = Bytes::from_static(&[0xa0]);
        let cid = cids::for_dag_cbor(&bytes);
        store.put(cid, bytes.clone()).await.unwrap();
        store.put_many(BlockMap::from([(cid, bytes)])).await.unwrap();
        assert_eq!(store.len(), 1);
        assert!(store.remove(&cid));
        assert!(store.is_empty());
    }
}
