//! The tree algorithms, written once as synchronous functions over whatever nodes are at hand.
//!
//! A node that is only known by CID (a stub) and not yet decoded stops an algorithm with
//! [`Step::Need`]; the caller fetches that block — from an async store or a CAR slice — and
//! runs the algorithm again. Every algorithm here is a pure function of the old tree (edits
//! build new nodes and share the rest), so stopping half-way changes nothing and the rerun is
//! safe. Each rerun has one more node cached, so the loop ends; the repeated work is a walk of
//! the path, negligible next to fetching a block.
//!
//! Layers are tracked top-down: a node's children sit exactly one layer below it, which lets a
//! node loaded from untrusted bytes be checked against the layer it must be at. That check also
//! bounds recursion: layers start at most at [`MAX_HEIGHT`](super::key::MAX_HEIGHT) and only go
//! down.

use foldhash::HashMap;
use std::sync::Arc;

use cid::Cid;

use super::key::MstKey;
use super::node::{Entry, Link, Node};
use super::MstError;

/// Why an algorithm stopped before finishing.
pub(crate) enum Step {
    /// It needs this node, which is not decoded yet; fetch it and run again.
    Need(Cid),
    /// It cannot finish: the tree is malformed.
    Fail(MstError),
}

impl From<MstError> for Step {
    fn from(error: MstError) -> Step {
        Step::Fail(error)
    }
}

pub(crate) type Stepped<T> = Result<T, Step>;

/// The decoded nodes an algorithm may use.
pub(crate) struct Ctx<'a> {
    pub(crate) cache: &'a HashMap<Cid, Arc<Node>>,
}

fn malformed(cid: Cid, reason: &'static str) -> Step {
    Step::Fail(MstError::MalformedTree { cid, reason })
}

impl Ctx<'_> {
    fn lookup(&self, link: &Link) -> Stepped<(Arc<Node>, bool)> {
        match link {
            Link::Node(node) => Ok((node.clone(), false)),
            Link::Stub(cid) => self.cache.get(cid).map(|node| (node.clone(), true)).ok_or(Step::Need(*cid)),
        }
    }

    /// The node behind `link`, which must sit at `layer`. Nodes built in memory are trusted;
    /// decoded ones are checked, since their bytes may come from anyone.
    pub(crate) fn node(&self, link: &Link, layer: u8) -> Stepped<Arc<Node>> {
        let (node, decoded) = self.lookup(link)?;
        if decoded {
            let cid = link.cid();
            match node.layer {
                Some(actual) if actual != layer => return Err(malformed(cid, "node at the wrong layer")),
                None if node.left.is_none() => return Err(malformed(cid, "empty node inside the tree")),
                _ => {}
            }
            if layer == 0 && node.has_children() {
                return Err(malformed(cid, "subtree below the lowest layer"));
            }
        }
        Ok(node)
    }

    /// The root node and its layer (`None` for the empty tree).
    pub(crate) fn root(&self, link: &Link) -> Stepped<(Arc<Node>, Option<u8>)> {
        let (node, decoded) = self.lookup(link)?;
        if decoded && node.entries.is_empty() && node.left.is_some() {
            return Err(malformed(link.cid(), "root is an empty node over a subtree"));
        }
        let layer = node.layer;
        Ok((node, layer))
    }
}

/// The layer below `layer`, for a node that has a subtree.
pub(crate) fn below(layer: u8, link: &Link) -> Stepped<u8> {
    layer.checked_sub(1).ok_or_else(|| malformed(link.cid(), "subtree below the lowest layer"))
}

fn non_empty(node: Node) -> Option<Link> {
    (!node.is_empty()).then(|| Link::new(node))
}

pub(crate) fn get(ctx: &Ctx<'_>, root: &Link, key: &[u8], height: u8) -> Stepped<Option<Cid>> {
    let (mut node, layer) = ctx.root(root)?;
    let Some(mut layer) = layer else {
        return Ok(None);
    };
    loop {
        let index = node.position(key);
        if let Some(entry) = node.entries.get(index) {
            if entry.key.as_bytes() == key {
                return Ok(Some(entry.value));
            }
        }
        // A key lives at the layer of its height; below that it cannot be.
        if height >= layer {
            return Ok(None);
        }
        let Some(child) = node.child_before(index) else {
            return Ok(None);
        };
        layer = below(layer, child)?;
        node = ctx.node(child, layer)?;
    }
}

/// Inserts or replaces `key`; the new root and the value it replaced.
pub(crate) fn insert(ctx: &Ctx<'_>, root: &Link, key: &MstKey, height: u8, value: Cid) -> Stepped<(Link, Option<Cid>)> {
    let (node, layer) = ctx.root(root)?;
    let Some(layer) = layer else {
        let entry = Entry { key: key.clone(), value, right: None };
        return Ok((Link::new(Node::new(None, vec![entry], height)), None));
    };
    if height > layer {
        // The key goes above the whole tree, which splits into the subtrees either side of it,
        // each raised through empty nodes to sit just below the new root.
        let (low, high) = split(ctx, &node, root, layer, key.as_bytes())?;
        let (low, high) = (raise(low, layer, height - 1), raise(high, layer, height - 1));
        let entry = Entry { key: key.clone(), value, right: high };
        return Ok((Link::new(Node::new(low, vec![entry], height)), None));
    }
    let (node, previous) = insert_at(ctx, &node, layer, key, height, value)?;
    Ok((Link::new(node), previous))
}

/// Wraps `link` (a subtree at layer `from`) in empty nodes until it sits at layer `to`.
fn raise(mut link: Option<Link>, from: u8, to: u8) -> Option<Link> {
    for layer in from + 1..=to {
        link = link.map(|link| Link::new(Node::new(Some(link), Vec::new(), layer)));
    }
    link
}

fn insert_at(
    ctx: &Ctx<'_>,
    node: &Node,
    layer: u8,
    key: &MstKey,
    height: u8,
    value: Cid,
) -> Stepped<(Node, Option<Cid>)> {
    let index = node.position(key.as_bytes());
    let mut left = node.left.clone();
    let mut entries = node.entries.clone();
    if height == layer {
        if let Some(entry) = entries.get_mut(index).filter(|entry| entry.key == *key) {
            let previous = std::mem::replace(&mut entry.value, value);
            return Ok((Node::new(left, entries, layer), Some(previous)));
        }
        // The subtree that spans the new key's position splits around it.
        let (low, high) = match node.child_before(index) {
            Some(child) => {
                let lower = below(layer, child)?;
                split(ctx, &*ctx.node(child, lower)?, child, lower, key.as_bytes())?
            }
            None => (None, None),
        };
        Node::set_child_before(&mut left, &mut entries, index, low);
        entries.insert(index, Entry { key: key.clone(), value, right: high });
        return Ok((Node::new(left, entries, layer), None));
    }
    // height < layer, so layer > 0: descend, creating the subtree if there is none.
    let lower = layer - 1;
    let (child, previous) = match node.child_before(index) {
        Some(child) => insert_at(ctx, &*ctx.node(child, lower)?, lower, key, height, value)?,
        None => insert_at(ctx, &Node::empty(), lower, key, height, value)?,
    };
    Node::set_child_before(&mut left, &mut entries, index, Some(Link::new(child)));
    Ok((Node::new(left, entries, layer), previous))
}

/// Splits the subtree `node` (reached through `link`, at `layer`) into the keys below `key` and
/// the keys above it. `key` itself is not in the subtree: its height is above `layer`.
fn split(ctx: &Ctx<'_>, node: &Node, link: &Link, layer: u8, key: &[u8]) -> Stepped<(Option<Link>, Option<Link>)> {
    let index = node.position(key);
    let straddling = node.child_before(index);
    // Reuse the node when the split leaves it whole: no rehashing, and a stub stays a stub.
    if straddling.is_none() {
        if index == node.entries.len() {
            return Ok((Some(link.clone()), None));
        }
        if index == 0 {
            return Ok((None, Some(link.clone())));
        }
    }
    let (low_child, high_child) = match straddling {
        Some(child) => {
            let lower = below(layer, child)?;
            split(ctx, &*ctx.node(child, lower)?, child, lower, key)?
        }
        None => (None, None),
    };
    let mut low_left = node.left.clone();
    let mut low_entries = node.entries[..index].to_vec();
    Node::set_child_before(&mut low_left, &mut low_entries, index, low_child);
    let high_entries = node.entries[index..].to_vec();
    Ok((non_empty(Node::new(low_left, low_entries, layer)), non_empty(Node::new(high_child, high_entries, layer))))
}

/// Removes `key`; the new root and the removed value, or `None` when the key is absent.
pub(crate) fn delete(ctx: &Ctx<'_>, root: &Link, key: &[u8], height: u8) -> Stepped<Option<(Link, Cid)>> {
    let (node, layer) = ctx.root(root)?;
    let Some(mut layer) = layer else {
        return Ok(None);
    };
    let Some((node, previous)) = delete_at(ctx, &node, layer, key, height)? else {
        return Ok(None);
    };
    // The root must hold entries (or be the empty tree): drop empty nodes from the top.
    let mut top = Link::new(node);
    loop {
        let node = ctx.node(&top, layer)?;
        match (&node.left, node.entries.is_empty()) {
            (Some(child), true) => {
                layer = below(layer, child)?;
                top = child.clone();
            }
            _ => return Ok(Some((top, previous))),
        }
    }
}

fn delete_at(ctx: &Ctx<'_>, node: &Node, layer: u8, key: &[u8], height: u8) -> Stepped<Option<(Node, Cid)>> {
    let index = node.position(key);
    if height == layer {
        let Some(entry) = node.entries.get(index).filter(|entry| entry.key.as_bytes() == key) else {
            return Ok(None);
        };
        // The subtrees either side of the removed key join into one.
        let joined = merge(ctx, node.child_before(index).cloned(), entry.right.clone(), layer)?;
        let mut left = node.left.clone();
        let mut entries = node.entries.clone();
        entries.remove(index);
        Node::set_child_before(&mut left, &mut entries, index, joined);
        return Ok(Some((Node::new(left, entries, layer), entry.value)));
    }
    if height > layer {
        return Ok(None);
    }
    let Some(child) = node.child_before(index) else {
        return Ok(None);
    };
    let lower = below(layer, child)?;
    let Some((child, previous)) = delete_at(ctx, &*ctx.node(child, lower)?, lower, key, height)? else {
        return Ok(None);
    };
    let mut left = node.left.clone();
    let mut entries = node.entries.clone();
    Node::set_child_before(&mut left, &mut entries, index, non_empty(child));
    Ok(Some((Node::new(left, entries, layer), previous)))
}

/// Joins two adjacent subtrees (every key of `low` below every key of `high`), both children
/// of a node at `parent_layer`.
fn merge(ctx: &Ctx<'_>, low: Option<Link>, high: Option<Link>, parent_layer: u8) -> Stepped<Option<Link>> {
    let (low, high) = match (low, high) {
        (None, other) | (other, None) => return Ok(other),
        (Some(low), Some(high)) => (low, high),
    };
    let layer = below(parent_layer, &low)?;
    let low_node = ctx.node(&low, layer)?;
    let high_node = ctx.node(&high, layer)?;
    // Where they meet, the last subtree of `low` and the first of `high` join in turn.
    let middle = merge(ctx, low_node.last_child().cloned(), high_node.left.clone(), layer)?;
    let mut left = low_node.left.clone();
    let mut entries = low_node.entries.clone();
    let end = entries.len();
    Node::set_child_before(&mut left, &mut entries, end, middle);
    entries.extend(high_node.entries.iter().cloned());
    Ok(Some(Link::new(Node::new(left, entries, layer))))
}

/// The nodes from the root down to where `key` is or would be. With `neighbours`, also what
/// undoing an operation on the key reads: when the key is present, the nodes down the inner
/// edges of the subtrees either side of it (deleting it merges those); when absent, the nodes
/// spanning its position below its own layer (inserting it splits those).
pub(crate) fn path(ctx: &Ctx<'_>, root: &Link, key: &[u8], neighbours: bool) -> Stepped<Vec<Arc<Node>>> {
    let (mut node, layer) = ctx.root(root)?;
    let mut nodes = vec![node.clone()];
    let Some(mut layer) = layer else {
        return Ok(nodes);
    };
    loop {
        let index = node.position(key);
        if node.entries.get(index).is_some_and(|entry| entry.key.as_bytes() == key) {
            if neighbours {
                let entry = &node.entries[index];
                spine(ctx, node.child_before(index), layer, &mut nodes, |node| node.last_child())?;
                spine(ctx, entry.right.as_ref(), layer, &mut nodes, |node| node.left.as_ref())?;
            }
            return Ok(nodes);
        }
        // A proof of absence goes all the way down, even below the key's own height: verifiers
        // (the reference implementation's among them) look a key up by walking to a leaf, not
        // by its height. Re-inserting it also splits the subtree spanning its position.
        let Some(child) = node.child_before(index) else {
            return Ok(nodes);
        };
        layer = below(layer, child)?;
        node = ctx.node(child, layer)?;
        nodes.push(node.clone());
    }
}

/// Follows `next` down from `start` (a child of a node at `parent_layer`), collecting nodes.
fn spine(
    ctx: &Ctx<'_>,
    start: Option<&Link>,
    parent_layer: u8,
    nodes: &mut Vec<Arc<Node>>,
    next: impl Fn(&Node) -> Option<&Link>,
) -> Stepped<()> {
    let mut layer = parent_layer;
    let mut link = start.cloned();
    while let Some(current) = link {
        layer = below(layer, &current)?;
        let node = ctx.node(&current, layer)?;
        link = next(&node).cloned();
        nodes.push(node);
    }
    Ok(())
}
