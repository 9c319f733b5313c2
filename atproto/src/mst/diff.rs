//! What changed between two trees: entries created, updated and deleted, and the nodes one tree
//! has that the other lacks.
//!
//! Both trees are walked a layer at a time, top down. A node's children sit exactly one layer
//! below it, so every node of a given layer that either tree still has to visit is known once
//! the layer above is done; nodes present on both sides at that point (same CID) are identical
//! subtrees and are skipped whole. Only nodes that differ are fetched, so diffing a tree against
//! its edited successor reads just the edited paths.

use std::collections::BTreeMap;

use foldhash::HashMap;

use cid::Cid;

use super::key::MstKey;
use super::node::{Link, Node};
use super::tree::Ctx;
use super::{encode_block, Mst, MstError, RecordOp};
use crate::blockstore::{BlockMap, BlockStore};

/// The difference from one tree to another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MstDiff {
    /// Entries only in the new tree, by key.
    pub created: BTreeMap<MstKey, Cid>,
    /// Entries whose value changed: key → (old, new).
    pub updated: BTreeMap<MstKey, (Cid, Cid)>,
    /// Entries only in the old tree, with their old values.
    pub deleted: BTreeMap<MstKey, Cid>,
    /// Nodes of the new tree that the old one lacks, encoded: what a commit must write.
    pub new_blocks: BlockMap,
    /// Nodes of the old tree that the new one lacks: what a commit may delete.
    pub removed_blocks: Vec<Cid>,
}

impl MstDiff {
    /// The changes as record operations, in key order.
    pub fn ops(&self) -> Vec<RecordOp> {
        let mut ops: Vec<RecordOp> = Vec::new();
        ops.extend(self.created.iter().map(|(key, &cid)| RecordOp::Create { key: key.clone(), cid }));
        ops.extend(self.updated.iter().map(|(key, &(prev, cid))| RecordOp::Update { key: key.clone(), cid, prev }));
        ops.extend(self.deleted.iter().map(|(key, &prev)| RecordOp::Delete { key: key.clone(), prev }));
        ops.sort_by(|a, b| a.key().cmp(b.key()));
        ops
    }

    /// Whether the trees are identical.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.updated.is_empty() && self.deleted.is_empty() && self.removed_blocks.is_empty()
    }
}

/// The nodes of one tree still to visit, by layer, keyed by CID.
type Pending = BTreeMap<u8, HashMap<Cid, Link>>;

/// The difference from `old` to `new`, fetching from `store` the nodes neither has decoded.
pub async fn diff<S: BlockStore>(store: &S, old: &Mst, new: &Mst) -> Result<MstDiff, MstError> {
    let mut result = MstDiff::default();
    if old.root_cid() == new.root_cid() {
        return Ok(result);
    }
    let mut old_pending = Pending::new();
    let mut new_pending = Pending::new();
    let (old_root, old_layer) = old.drive(store, |ctx| ctx.root(&old.root)).await?;
    match old_layer {
        Some(layer) => {
            old_pending.entry(layer).or_default().insert(old.root_cid(), Link::Node(old_root));
        }
        // The empty tree is a lone node with nothing below it.
        None => result.removed_blocks.push(old.root_cid()),
    }
    let (new_root, new_layer) = new.drive(store, |ctx| ctx.root(&new.root)).await?;
    match new_layer {
        Some(layer) => {
            new_pending.entry(layer).or_default().insert(new.root_cid(), Link::Node(new_root));
        }
        None => {
            let (cid, bytes) = encode_block(&new_root);
            result.new_blocks.insert(cid, bytes);
        }
    }

    let mut old_entries = BTreeMap::new();
    let mut new_entries = BTreeMap::new();
    let top = old_pending.keys().chain(new_pending.keys()).copied().max();
    for layer in (0..=top.unwrap_or(0)).rev() {
        let mut old_layer = old_pending.remove(&layer).unwrap_or_default();
        let mut new_layer = new_pending.remove(&layer).unwrap_or_default();
        old_layer.retain(|cid, _| new_layer.remove(cid).is_none());
        for (cid, link) in old_layer {
            let node = old.drive(store, |ctx: &Ctx<'_>| ctx.node(&link, layer)).await?;
            result.removed_blocks.push(cid);
            old_entries.extend(node.entries.iter().map(|entry| (entry.key.clone(), entry.value)));
            queue_children(&mut old_pending, &node, layer, &link)?;
        }
        for (_, link) in new_layer {
            let node = new.drive(store, |ctx: &Ctx<'_>| ctx.node(&link, layer)).await?;
            let (cid, bytes) = encode_block(&node);
            result.new_blocks.insert(cid, bytes);
            new_entries.extend(node.entries.iter().map(|entry| (entry.key.clone(), entry.value)));
            queue_children(&mut new_pending, &node, layer, &link)?;
        }
    }
    result.removed_blocks.sort();

    // An entry in a visited node of one tree is, if present in the other at all, in a visited
    // node there too: the node holding it differs, or it would have been skipped on both sides.
    for (key, old_value) in old_entries {
        match new_entries.remove(&key) {
            Some(new_value) if new_value == old_value => {}
            Some(new_value) => {
                result.updated.insert(key, (old_value, new_value));
            }
            None => {
                result.deleted.insert(key, old_value);
            }
        }
    }
    result.created = new_entries;
    Ok(result)
}

fn queue_children(pending: &mut Pending, node: &Node, layer: u8, link: &Link) -> Result<(), MstError> {
    let mut children = node.left.iter().chain(node.entries.iter().filter_map(|entry| entry.right.as_ref())).peekable();
    if children.peek().is_none() {
        return Ok(());
    }
    let lower = layer
        .checked_sub(1)
        .ok_or(MstError::MalformedTree { cid: link.cid(), reason: "subtree below the lowest layer" })?;
    let queue = pending.entry(lower).or_default();
    for child in children {
        queue.insert(child.cid(), child.clone());
    }
    Ok(())
}
