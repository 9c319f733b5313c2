//! Walking a repository's tree block by block, checking it as it goes, without holding more
//! than the path being walked: what lets an import verify a repository of any size in bounded
//! memory, reading its blocks from wherever they were put aside.

use bytes::Bytes;
use cid::Cid;

use super::CarError;
use crate::mst::{decode_node, MstError, MstKey};

/// What a walk meets: every node (each before what lies under it) and every record, in key
/// order.
pub enum Visit<'a> {
    Node { cid: &'a Cid, bytes: &'a Bytes },
    Record { key: &'a MstKey, cid: &'a Cid, bytes: &'a Bytes },
}

/// Work left on the walk's stack.
enum Pending {
    /// A node to read; `layer` is `None` for the root, whose layer its keys tell.
    Node {
        cid: Cid,
        layer: Option<u8>,
    },
    Record {
        key: MstKey,
        cid: Cid,
    },
}

/// Walks the MST whose root node is `root`, reading blocks with `get`, and shows `visit` each
/// node and record. The tree must be complete and well-formed: canonical nodes, every key at
/// the layer of its height, no empty node inside the tree (nor as a root over a subtree), no
/// subtree under the lowest layer, and keys strictly ascending across the whole tree; every
/// record it names must be there. The first fault ends the walk with its error, as does an
/// error from `get` or `visit`.
pub fn walk_tree(
    root: Cid,
    mut get: impl FnMut(&Cid) -> Result<Option<Bytes>, CarError>,
    mut visit: impl FnMut(Visit<'_>) -> Result<(), CarError>,
) -> Result<(), CarError> {
    let mut stack = vec![Pending::Node { cid: root, layer: None }];
    let mut previous: Option<MstKey> = None;
    while let Some(pending) = stack.pop() {
        match pending {
            Pending::Record { key, cid } => {
                if previous.as_ref().is_some_and(|previous| *previous >= key) {
                    return Err(CarError::KeysOutOfOrder(key));
                }
                let bytes = get(&cid)?.ok_or_else(|| CarError::MissingRecord { key: key.clone(), cid })?;
                visit(Visit::Record { key: &key, cid: &cid, bytes: &bytes })?;
                previous = Some(key);
            }
            Pending::Node { cid, layer } => {
                let bytes = get(&cid)?.ok_or(MstError::MissingBlock(cid))?;
                let node = decode_node(&bytes)?;
                let own = node.entries.first().map(|entry| entry.key.height());
                let malformed = |reason| CarError::Mst(MstError::MalformedTree { cid, reason });
                let layer = match layer {
                    None if node.entries.is_empty() && node.left.is_some() => {
                        return Err(malformed("root is an empty node over a subtree"));
                    }
                    None => own,
                    Some(expected) => {
                        if own.is_some_and(|own| own != expected) {
                            return Err(malformed("node at the wrong layer"));
                        }
                        if node.entries.is_empty() && node.left.is_none() {
                            return Err(malformed("empty node inside the tree"));
                        }
                        Some(expected)
                    }
                };
                visit(Visit::Node { cid: &cid, bytes: &bytes })?;
                let has_children = node.left.is_some() || node.entries.iter().any(|entry| entry.right.is_some());
                let Some(layer) = layer else { continue };
                if !has_children {
                    stack.extend(
                        node.entries
                            .into_iter()
                            .rev()
                            .map(|entry| Pending::Record { key: entry.key, cid: entry.value }),
                    );
                    continue;
                }
                let below = layer.checked_sub(1).ok_or_else(|| malformed("subtree below the lowest layer"))?;
                // Pushed last to first, so that they come off in key order.
                for entry in node.entries.into_iter().rev() {
                    if let Some(right) = entry.right {
                        stack.push(Pending::Node { cid: right, layer: Some(below) });
                    }
                    stack.push(Pending::Record { key: entry.key, cid: entry.value });
                }
                if let Some(left) = node.left {
                    stack.push(Pending::Node { cid: left, layer: Some(below) });
                }
            }
        }
    }
    Ok(())
}
