//! In-order iteration over a key range, forwards or backwards, with an explicit stack so that
//! it can stop for a missing node and resume where it was once the node is fetched.

use std::ops::Bound;
use std::sync::Arc;

use cid::Cid;

use super::key::MstKey;
use super::node::{Link, Node};
use super::tree::{below, Ctx, Stepped};

/// Which keys a listing returns, in which order, and how many.
#[derive(Debug, Clone)]
pub struct ListOptions {
    /// Lower bound on keys.
    pub start: Bound<String>,
    /// Upper bound on keys.
    pub end: Bound<String>,
    /// Highest key first.
    pub reverse: bool,
    /// At most this many entries.
    pub limit: Option<usize>,
}

impl ListOptions {
    /// Every key, in ascending order.
    pub fn all() -> ListOptions {
        ListOptions { start: Bound::Unbounded, end: Bound::Unbounded, reverse: false, limit: None }
    }

    /// The keys that start with `prefix` (e.g. `"app.bsky.feed.post/"` for one collection).
    pub fn prefix(prefix: &str) -> ListOptions {
        // Keys are ASCII, so every key with the prefix sorts below the prefix followed by
        // U+007F, and every other key at or above the prefix sorts at or above that.
        let end = format!("{prefix}\u{7f}");
        ListOptions {
            start: Bound::Included(prefix.to_owned()),
            end: Bound::Excluded(end),
            reverse: false,
            limit: None,
        }
    }

    /// The keys within `start` and `end`.
    pub fn range(start: Bound<String>, end: Bound<String>) -> ListOptions {
        ListOptions { start, end, reverse: false, limit: None }
    }

    /// The same keys, highest first.
    pub fn reversed(self) -> ListOptions {
        ListOptions { reverse: true, ..self }
    }

    /// At most `limit` of them.
    pub fn limit(self, limit: usize) -> ListOptions {
        ListOptions { limit: Some(limit), ..self }
    }

    fn below_start(&self, key: &[u8]) -> bool {
        match &self.start {
            Bound::Included(start) => key < start.as_bytes(),
            Bound::Excluded(start) => key <= start.as_bytes(),
            Bound::Unbounded => false,
        }
    }

    fn above_end(&self, key: &[u8]) -> bool {
        match &self.end {
            Bound::Included(end) => key > end.as_bytes(),
            Bound::Excluded(end) => key >= end.as_bytes(),
            Bound::Unbounded => false,
        }
    }
}

/// A node being walked. Its items are numbered `0..=2n` for `n` entries: even items are the
/// subtrees (`2i` is the one before entry `i`), odd items the entries (`2i + 1` is entry `i`).
struct Frame {
    node: Arc<Node>,
    layer: u8,
    /// Forwards: the next item to visit. Backwards: one past it (0 = finished).
    next: usize,
}

pub(crate) struct Cursor {
    options: ListOptions,
    stack: Vec<Frame>,
    started: bool,
    returned: usize,
}

impl Cursor {
    pub(crate) fn new(options: ListOptions) -> Cursor {
        Cursor { options, stack: Vec::new(), started: false, returned: 0 }
    }

    /// Where to begin in `node`: skip the entries and subtrees wholly outside the range.
    fn frame(&self, node: Arc<Node>, layer: u8) -> Frame {
        let next = if self.options.reverse {
            match &self.options.end {
                Bound::Unbounded => 2 * node.entries.len() + 1,
                // One past the subtree before the first entry at or above the bound; the entry
                // itself is filtered if it is out of range.
                Bound::Included(end) | Bound::Excluded(end) => 2 * node.position(end.as_bytes()) + 2,
            }
        } else {
            match &self.options.start {
                Bound::Unbounded => 0,
                Bound::Included(start) | Bound::Excluded(start) => 2 * node.position(start.as_bytes()),
            }
        };
        let next = next.min(2 * node.entries.len() + 1);
        Frame { node, layer, next }
    }

    /// The next entry in range. On [`super::tree::Step::Need`] nothing has moved: fetch the
    /// node and call again.
    pub(crate) fn next(&mut self, ctx: &Ctx<'_>, root: &Link) -> Stepped<Option<(MstKey, Cid)>> {
        if self.options.limit.is_some_and(|limit| self.returned >= limit) {
            return Ok(None);
        }
        if !self.started {
            let (node, layer) = ctx.root(root)?;
            self.started = true;
            if let Some(layer) = layer {
                let frame = self.frame(node, layer);
                self.stack.push(frame);
            }
        }
        let reverse = self.options.reverse;
        while let Some(frame) = self.stack.last_mut() {
            let item = if reverse {
                match frame.next.checked_sub(1) {
                    Some(item) => item,
                    None => {
                        self.stack.pop();
                        continue;
                    }
                }
            } else {
                if frame.next > 2 * frame.node.entries.len() {
                    self.stack.pop();
                    continue;
                }
                frame.next
            };
            let advanced = if reverse { item } else { item + 1 };
            if item % 2 == 1 {
                frame.next = advanced;
                let entry = &frame.node.entries[item / 2];
                let key = entry.key.as_bytes();
                let (before, after) = (self.options.below_start(key), self.options.above_end(key));
                if (reverse && before) || (!reverse && after) {
                    // Everything further along is out of range too.
                    self.stack.clear();
                    return Ok(None);
                }
                if before || after {
                    continue;
                }
                self.returned += 1;
                return Ok(Some((entry.key.clone(), entry.value)));
            }
            let Some(child) = frame.node.child_before(item / 2).cloned() else {
                frame.next = advanced;
                continue;
            };
            let layer = below(frame.layer, &child)?;
            // Resolve before moving, so that a missing node leaves the cursor where it was.
            let node = ctx.node(&child, layer)?;
            frame.next = advanced;
            let frame = self.frame(node, layer);
            self.stack.push(frame);
        }
        Ok(None)
    }
}
