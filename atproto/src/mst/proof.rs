//! Record operations and their inversion: the sync v1.1 check that a commit's operations turn
//! the previous tree (`prevData`) into the new one, using only the blocks of the commit's CAR
//! slice.
//!
//! Rather than applying the operations forward, which would need the whole previous tree, they
//! are undone on the new tree: a create becomes a delete, an update restores the previous CID,
//! a delete re-inserts it. The slice carries the nodes each undo reads (see
//! [`Mst::covering_proof`]); every other subtree stays a stub whose CID is all the root hash
//! needs.

use std::collections::HashSet;

use cid::Cid;

use super::key::MstKey;
use super::tree;
use super::{Mst, MstError};
use crate::blockstore::BlockMap;

/// A change to one record, as a commit (and the firehose) states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOp {
    /// `key` now maps to `cid`; it was absent.
    Create { key: MstKey, cid: Cid },
    /// `key` now maps to `cid`; it mapped to `prev`.
    Update { key: MstKey, cid: Cid, prev: Cid },
    /// `key` is now absent; it mapped to `prev`.
    Delete { key: MstKey, prev: Cid },
}

impl RecordOp {
    /// The key the operation changes.
    pub fn key(&self) -> &MstKey {
        match self {
            RecordOp::Create { key, .. } | RecordOp::Update { key, .. } | RecordOp::Delete { key, .. } => key,
        }
    }

    /// The CID the key maps to afterwards (`None` for a delete).
    pub fn cid(&self) -> Option<Cid> {
        match self {
            RecordOp::Create { cid, .. } | RecordOp::Update { cid, .. } => Some(*cid),
            RecordOp::Delete { .. } => None,
        }
    }

    /// The CID the key mapped to before (`None` for a create).
    pub fn prev(&self) -> Option<Cid> {
        match self {
            RecordOp::Update { prev, .. } | RecordOp::Delete { prev, .. } => Some(*prev),
            RecordOp::Create { .. } => None,
        }
    }
}

/// Why a commit's operations could not be undone back to its `prevData`.
#[derive(Debug, thiserror::Error)]
pub enum InvertError {
    /// Two operations change the same key; a commit may change each key once.
    #[error("more than one operation on {0}")]
    DuplicateKey(MstKey),
    /// The new tree does not hold what the operation says it left there.
    #[error("the tree does not match the operation on {key}: {reason}")]
    OpMismatch { key: MstKey, reason: &'static str },
    /// The tree could not be read: most often a block the CAR slice should carry is missing.
    #[error(transparent)]
    Mst(#[from] MstError),
    /// Undoing every operation gave a different tree than the commit's `prevData`.
    #[error("the operations lead back to {}, not to prevData {}", .0.found, .0.expected)]
    PrevDataMismatch(Box<PrevDataMismatch>),
}

/// The roots of a failed inversion (boxed in [`InvertError`]: two CIDs make a large error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrevDataMismatch {
    /// The commit's `prevData`.
    pub expected: Cid,
    /// Where undoing the operations led.
    pub found: Cid,
}

/// Undoes `ops` on the tree rooted at `root`, reading nodes only from `blocks`, and returns the
/// root of the tree the operations started from.
pub fn invert_ops(root: Cid, ops: &[RecordOp], blocks: &BlockMap) -> Result<Cid, InvertError> {
    let mut seen = HashSet::new();
    if let Some(op) = ops.iter().find(|op| !seen.insert(op.key())) {
        return Err(InvertError::DuplicateKey(op.key().clone()));
    }
    let mut mst = Mst::load(root);
    for op in ops {
        let key = op.key();
        let height = key.height();
        let current = mst.drive_blocks(blocks, |ctx| tree::get(ctx, &mst.root, key.as_bytes(), height))?;
        let mismatch = |reason| Err(InvertError::OpMismatch { key: key.clone(), reason });
        if current != op.cid() {
            return mismatch(match op {
                RecordOp::Delete { .. } => "a deleted key is still present",
                _ => "the key does not hold the operation's CID",
            });
        }
        match op.prev() {
            None => {
                let deleted = mst.drive_blocks(blocks, |ctx| tree::delete(ctx, &mst.root, key.as_bytes(), height))?;
                match deleted {
                    Some((root, _)) => mst.root = root,
                    None => return mismatch("a created key is absent"),
                }
            }
            Some(prev) => {
                let (root, _) = mst.drive_blocks(blocks, |ctx| tree::insert(ctx, &mst.root, key, height, prev))?;
                mst.root = root;
            }
        }
    }
    Ok(mst.root_cid())
}

/// Checks that undoing `ops` on the tree rooted at `root` (the commit's `data`), with only
/// `blocks` (the commit's CAR slice), leads back to `prev_data`.
pub fn verify_inversion(root: Cid, prev_data: Cid, ops: &[RecordOp], blocks: &BlockMap) -> Result<(), InvertError> {
    let found = invert_ops(root, ops, blocks)?;
    if found != prev_data {
        return Err(InvertError::PrevDataMismatch(Box::new(PrevDataMismatch { expected: prev_data, found })));
    }
    Ok(())
}
