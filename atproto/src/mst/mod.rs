//! The Merkle Search Tree of atproto repositories (repo format v3): a deterministic, content-
//! addressed map from repo paths to record CIDs.
//!
//! An [`Mst`] is a root plus a cache of decoded nodes. Loading one is free: nodes are fetched
//! from a [`BlockStore`] only as operations reach them, and edits build new nodes along the
//! changed path while sharing the rest, so an [`Mst`] is a cheap, immutable-feeling value and
//! `clone` snapshots it (clones share the cache). [`diff`] then finds exactly the nodes one
//! tree has and another lacks — the blocks a commit must write and may delete.
//!
//! Sync v1.1 verification lives here too: [`invert_ops`] undoes a commit's operations on the
//! partial tree its CAR slice carries, to check the result against the commit's `prevData`.

mod cursor;
mod diff;
mod key;
mod node;
mod proof;
mod tree;

use foldhash::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use cid::Cid;

pub use cursor::ListOptions;
pub use diff::{diff, MstDiff};
pub use key::{common_prefix_len, height, InvalidKey, MstKey, MAX_HEIGHT, MAX_KEY_LEN};
pub use node::MAX_NODE_ENTRIES;
pub use proof::{invert_ops, verify_inversion, InvertError, PrevDataMismatch, RecordOp};

use crate::blockstore::{BlockMap, BlockStore, BlockStoreError};
use crate::cids;
use cursor::Cursor;
use node::{Link, Node};
use tree::{Ctx, Step, Stepped};

/// Why an MST operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MstError {
    /// A node the operation needs is in neither the tree's cache nor the store.
    #[error("MST block {0} is missing")]
    MissingBlock(Cid),
    /// A block is not a well-formed MST node.
    #[error("invalid MST node {cid}: {reason}")]
    InvalidNode { cid: Cid, reason: &'static str },
    /// Nodes are individually fine but do not fit together as the spec requires.
    #[error("malformed MST at {cid}: {reason}")]
    MalformedTree { cid: Cid, reason: &'static str },
    /// The block store failed.
    #[error(transparent)]
    Store(#[from] BlockStoreError),
}

type NodeCache = Arc<Mutex<HashMap<Cid, Arc<Node>>>>;

/// A Merkle Search Tree, possibly only partly loaded. See the [module docs](self).
#[derive(Clone)]
pub struct Mst {
    root: Link,
    cache: NodeCache,
}

impl Default for Mst {
    fn default() -> Self {
        Mst::new()
    }
}

impl std::fmt::Debug for Mst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mst").field("root", &self.root_cid()).finish_non_exhaustive()
    }
}

impl Mst {
    /// The empty tree.
    pub fn new() -> Mst {
        Mst { root: Link::new(Node::empty()), cache: NodeCache::default() }
    }

    /// The tree whose root node is `root`; nothing is fetched until an operation needs it.
    pub fn load(root: Cid) -> Mst {
        Mst { root: Link::Stub(root), cache: NodeCache::default() }
    }

    /// The CID of the root node: the `data` of a commit. Hashes the nodes built since the tree
    /// was loaded, once each (a node remembers its CID).
    pub fn root_cid(&self) -> Cid {
        self.root.cid()
    }

    /// How many nodes fetched from a store the tree keeps decoded.
    pub fn cached_nodes(&self) -> usize {
        self.cache().len()
    }

    /// The record CID stored under `key`.
    pub async fn get<S: BlockStore>(&self, store: &S, key: &MstKey) -> Result<Option<Cid>, MstError> {
        let height = key.height();
        self.drive(store, |ctx| tree::get(ctx, &self.root, key.as_bytes(), height)).await
    }

    /// Stores `value` under `key`, returning the value it replaced.
    pub async fn insert<S: BlockStore>(
        &mut self,
        store: &S,
        key: &MstKey,
        value: Cid,
    ) -> Result<Option<Cid>, MstError> {
        let height = key.height();
        let (root, previous) = self.drive(store, |ctx| tree::insert(ctx, &self.root, key, height, value)).await?;
        self.root = root;
        Ok(previous)
    }

    /// Removes `key`, returning its value, or `None` (and no change) when it is absent.
    pub async fn delete<S: BlockStore>(&mut self, store: &S, key: &MstKey) -> Result<Option<Cid>, MstError> {
        let height = key.height();
        let deleted = self.drive(store, |ctx| tree::delete(ctx, &self.root, key.as_bytes(), height)).await?;
        Ok(deleted.map(|(root, previous)| {
            self.root = root;
            previous
        }))
    }

    /// The entries `options` selects, in its order.
    pub async fn list<S: BlockStore>(&self, store: &S, options: ListOptions) -> Result<Vec<(MstKey, Cid)>, MstError> {
        let mut cursor = Cursor::new(options);
        let mut entries = Vec::new();
        // The cursor resumes where it stopped, so each missing node is fetched once.
        while let Some(entry) = self.drive(store, |ctx| cursor.next(ctx, &self.root)).await? {
            entries.push(entry);
        }
        Ok(entries)
    }

    /// The nodes from the root to where `key` is or would be: with the record, proof that the
    /// key maps to it; without, proof that the key is absent (`com.atproto.sync.getRecord`).
    pub async fn proof<S: BlockStore>(&self, store: &S, key: &MstKey) -> Result<BlockMap, MstError> {
        self.path_blocks(store, key, false).await
    }

    /// The proof of [`Mst::proof`] plus, when the key is present, the nodes along the inner
    /// edges of the subtrees either side of it. A commit's CAR slice carries this for every
    /// operation (sync v1.1), which is what lets [`invert_ops`] undo the operations in any
    /// order with nothing but the slice.
    pub async fn covering_proof<S: BlockStore>(&self, store: &S, key: &MstKey) -> Result<BlockMap, MstError> {
        self.path_blocks(store, key, true).await
    }

    async fn path_blocks<S: BlockStore>(
        &self,
        store: &S,
        key: &MstKey,
        neighbours: bool,
    ) -> Result<BlockMap, MstError> {
        let nodes = self.drive(store, |ctx| tree::path(ctx, &self.root, key.as_bytes(), neighbours)).await?;
        Ok(nodes.iter().map(|node| encode_block(node)).collect())
    }

    /// Every node of the tree, encoded: the whole tree as blocks (e.g. to write a tree built in
    /// memory to a store, or to export it).
    pub async fn blocks<S: BlockStore>(&self, store: &S) -> Result<BlockMap, MstError> {
        let empty = Mst::new();
        if self.root_cid() == empty.root_cid() {
            // A diff against the empty tree would find nothing new here.
            return Ok(BlockMap::from([encode_block(&Node::empty())]));
        }
        Ok(diff(store, &empty, self).await?.new_blocks)
    }

    /// Runs `attempt` until it no longer needs a node it lacks, fetching each such node from
    /// `store` (see `tree` for why rerunning is sound).
    async fn drive<S: BlockStore, T>(
        &self,
        store: &S,
        mut attempt: impl FnMut(&Ctx<'_>) -> Stepped<T> + Send,
    ) -> Result<T, MstError> {
        loop {
            let outcome = {
                let cache = self.cache();
                attempt(&Ctx { cache: &cache })
            };
            match outcome {
                Ok(value) => return Ok(value),
                Err(Step::Fail(error)) => return Err(error),
                Err(Step::Need(cid)) => {
                    let bytes = store.get(&cid).await?.ok_or(MstError::MissingBlock(cid))?;
                    self.add_block(cid, &bytes)?;
                }
            }
        }
    }

    /// [`Mst::drive`] over blocks already in memory.
    fn drive_blocks<T>(
        &self,
        blocks: &BlockMap,
        mut attempt: impl FnMut(&Ctx<'_>) -> Stepped<T>,
    ) -> Result<T, MstError> {
        loop {
            let outcome = {
                let cache = self.cache();
                attempt(&Ctx { cache: &cache })
            };
            match outcome {
                Ok(value) => return Ok(value),
                Err(Step::Fail(error)) => return Err(error),
                Err(Step::Need(cid)) => {
                    let bytes = blocks.get(&cid).ok_or(MstError::MissingBlock(cid))?;
                    self.add_block(cid, bytes)?;
                }
            }
        }
    }

    /// Decodes a fetched node into the cache, after checking that it is what its CID names.
    fn add_block(&self, cid: Cid, bytes: &[u8]) -> Result<(), MstError> {
        if cids::for_dag_cbor(bytes) != cid {
            return Err(MstError::InvalidNode { cid, reason: "block does not hash to its CID" });
        }
        let node = Node::decode(bytes, cid)?;
        self.cache().insert(cid, Arc::new(node));
        Ok(())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Cid, Arc<Node>>> {
        // The map is only ever inserted into, so a panic elsewhere cannot leave it inconsistent.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An MST node as its block states it, for code that walks raw blocks (CAR export, fuzzing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeData {
    /// The subtree of keys before the first entry.
    pub left: Option<Cid>,
    /// The entries, in key order.
    pub entries: Vec<NodeEntry>,
}

/// One entry of a [`NodeData`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    /// The full key (prefix compression undone).
    pub key: MstKey,
    /// The record CID.
    pub value: Cid,
    /// The subtree of keys between this entry and the next.
    pub right: Option<Cid>,
}

/// Decodes an MST node block strictly: canonical encoding, valid keys in ascending order, all
/// of one height, blessed subtree links. (Where the node sits in a tree is not checked.)
pub fn decode_node(bytes: &[u8]) -> Result<NodeData, MstError> {
    let node = Node::decode(bytes, cids::for_dag_cbor(bytes))?;
    Ok(NodeData {
        left: node.left.as_ref().map(Link::cid),
        entries: node
            .entries
            .iter()
            .map(|entry| NodeEntry {
                key: entry.key.clone(),
                value: entry.value,
                right: entry.right.as_ref().map(Link::cid),
            })
            .collect(),
    })
}

fn encode_block(node: &Node) -> (Cid, Bytes) {
    node.block()
}

#[cfg(test)]
mod tests;
