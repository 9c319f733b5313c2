//! MST nodes in memory, and their exact DAG-CBOR form.
//!
//! The node schema is fixed and tiny, so it is encoded and decoded by hand: that is several
//! times faster than going through serde (node hashing dominates root recomputation), and the
//! decoder can hold untrusted bytes to the one canonical encoding without a general CBOR parser.
//! A decoded node is re-encoded and compared with its input, so any non-canonical form
//! (long-form integers, unsorted or extra fields, a prefix that is not maximal) is rejected.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use cid::Cid;

use super::key::{common_prefix_len, height, MstKey};
use super::MstError;
use crate::cids;

/// Entries a decoded node may hold. With fanout 4 a node of even 100 entries is astronomically
/// unlikely by chance; the spec asks for a limit because keys can be mined to build huge nodes.
pub const MAX_NODE_ENTRIES: usize = 2048;

/// A link to a subtree: either just its CID (not loaded; a "stub"), or the node itself.
#[derive(Clone)]
pub(crate) enum Link {
    Stub(Cid),
    Node(Arc<Node>),
}

impl Link {
    pub(crate) fn cid(&self) -> Cid {
        match self {
            Link::Stub(cid) => *cid,
            Link::Node(node) => node.cid(),
        }
    }

    pub(crate) fn new(node: Node) -> Link {
        Link::Node(Arc::new(node))
    }
}

/// One key of a node, its record CID, and the subtree of keys between it and the next entry.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) key: MstKey,
    pub(crate) value: Cid,
    pub(crate) right: Option<Link>,
}

/// An MST node. Immutable once built: edits build new nodes along the changed path and share
/// the rest, so the previous tree stays valid (diffs and inversions rely on that).
pub(crate) struct Node {
    pub(crate) left: Option<Link>,
    pub(crate) entries: Vec<Entry>,
    /// The height of every key in `entries`; `None` for a node without entries.
    pub(crate) layer: Option<u8>,
    /// Computed on first use; known up front for a node decoded from a block.
    cid: OnceLock<Cid>,
    /// The encoding the CID was computed from, for a node built in memory: the commit that
    /// built the node writes it, and its firehose event carries it, so it is encoded once.
    /// Decoded nodes leave it empty rather than keep a second copy of what the store holds.
    bytes: OnceLock<Bytes>,
}

impl Node {
    pub(crate) fn new(left: Option<Link>, entries: Vec<Entry>, layer: u8) -> Node {
        let layer = if entries.is_empty() { None } else { Some(layer) };
        Node { left, entries, layer, cid: OnceLock::new(), bytes: OnceLock::new() }
    }

    pub(crate) fn empty() -> Node {
        Node { left: None, entries: Vec::new(), layer: None, cid: OnceLock::new(), bytes: OnceLock::new() }
    }

    /// Neither entries nor a subtree: pruned everywhere except as the root of an empty tree.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.left.is_none()
    }

    pub(crate) fn cid(&self) -> Cid {
        *self.cid.get_or_init(|| cids::for_dag_cbor(self.bytes.get_or_init(|| Bytes::from(self.encode()))))
    }

    /// The node as a block: its CID and canonical bytes.
    pub(crate) fn block(&self) -> (Cid, Bytes) {
        let cid = self.cid();
        (cid, self.bytes.get().cloned().unwrap_or_else(|| Bytes::from(self.encode())))
    }

    /// The subtree before entry `index` (the left link for 0): where keys that sort between
    /// entries `index - 1` and `index` live.
    pub(crate) fn child_before(&self, index: usize) -> Option<&Link> {
        match index {
            0 => self.left.as_ref(),
            _ => self.entries.get(index - 1).and_then(|entry| entry.right.as_ref()),
        }
    }

    /// Sets the subtree before entry `index`, as [`Node::child_before`] reads it.
    pub(crate) fn set_child_before(left: &mut Option<Link>, entries: &mut [Entry], index: usize, link: Option<Link>) {
        match index {
            0 => *left = link,
            _ => {
                if let Some(entry) = entries.get_mut(index - 1) {
                    entry.right = link;
                }
            }
        }
    }

    /// The last subtree: after the last entry, or the left link of a node without entries.
    pub(crate) fn last_child(&self) -> Option<&Link> {
        self.child_before(self.entries.len())
    }

    pub(crate) fn has_children(&self) -> bool {
        self.left.is_some() || self.entries.iter().any(|entry| entry.right.is_some())
    }

    /// Index of the first entry whose key is not below `key`.
    pub(crate) fn position(&self, key: &[u8]) -> usize {
        self.entries.partition_point(|entry| entry.key.as_bytes() < key)
    }

    /// The node's canonical DAG-CBOR bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.entries.len() * 96);
        // {"e": [...], "l": ...}: keys sorted by length, then bytewise.
        out.push(0xa2);
        text(&mut out, "e");
        head(&mut out, 4, self.entries.len() as u64);
        let mut previous: &[u8] = &[];
        for entry in &self.entries {
            let key = entry.key.as_bytes();
            let prefix = common_prefix_len(previous, key);
            // {"k": suffix, "p": prefix, "t": link-or-null, "v": link}.
            out.push(0xa4);
            text(&mut out, "k");
            head(&mut out, 2, (key.len() - prefix) as u64);
            out.extend_from_slice(&key[prefix..]);
            text(&mut out, "p");
            head(&mut out, 0, prefix as u64);
            text(&mut out, "t");
            optional_link(&mut out, entry.right.as_ref().map(Link::cid));
            text(&mut out, "v");
            link(&mut out, &entry.value);
            previous = key;
        }
        text(&mut out, "l");
        optional_link(&mut out, self.left.as_ref().map(Link::cid));
        out
    }

    /// Decodes the block `bytes` stored under `cid`, checking that it is the canonical encoding
    /// of a well-formed node: keys valid, strictly ascending and all of one height, links to
    /// subtrees in the blessed CID form. Whether the node sits at the right layer of its tree
    /// is checked when the tree reaches it.
    pub(crate) fn decode(bytes: &[u8], cid: Cid) -> Result<Node, MstError> {
        let invalid = |reason| MstError::InvalidNode { cid, reason };
        let mut reader = Reader { bytes, pos: 0 };
        let decoded = decode_node(&mut reader).map_err(invalid)?;
        if reader.pos != bytes.len() {
            return Err(invalid("trailing bytes after the node"));
        }
        let node = Node { cid: OnceLock::from(cid), ..decoded };
        if node.encode() != bytes {
            return Err(invalid("not the canonical encoding"));
        }
        Ok(node)
    }
}

/// Writes a CBOR head: major type and argument, in the shortest form (DAG-CBOR requires it).
fn head(out: &mut Vec<u8>, major: u8, value: u64) {
    let major = major << 5;
    if value < 24 {
        out.push(major | value as u8);
    } else if value <= u64::from(u8::MAX) {
        out.extend_from_slice(&[major | 24, value as u8]);
    } else if value <= u64::from(u16::MAX) {
        out.push(major | 25);
        out.extend_from_slice(&(value as u16).to_be_bytes());
    } else if value <= u64::from(u32::MAX) {
        out.push(major | 26);
        out.extend_from_slice(&(value as u32).to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

fn text(out: &mut Vec<u8>, value: &str) {
    head(out, 3, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

/// A CID link: tag 42 over the CID's bytes behind a zero byte (the identity multibase prefix).
fn link(out: &mut Vec<u8>, cid: &Cid) {
    let bytes = cid.to_bytes();
    out.extend_from_slice(&[0xd8, 42]);
    head(out, 2, bytes.len() as u64 + 1);
    out.push(0);
    out.extend_from_slice(&bytes);
}

fn optional_link(out: &mut Vec<u8>, cid: Option<Cid>) {
    match cid {
        Some(cid) => link(out, &cid),
        None => out.push(0xf6),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

type Decoded<T> = Result<T, &'static str>;

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Decoded<u8> {
        let byte = *self.bytes.get(self.pos).ok_or("truncated")?;
        self.pos += 1;
        Ok(byte)
    }

    fn take(&mut self, len: u64) -> Decoded<&'a [u8]> {
        let len = usize::try_from(len).map_err(|_| "length out of range")?;
        let end = self.pos.checked_add(len).ok_or("length out of range")?;
        let slice = self.bytes.get(self.pos..end).ok_or("truncated")?;
        self.pos = end;
        Ok(slice)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// A CBOR head of `major` type; any length form is read (the re-encoding check rejects
    /// non-shortest ones), indefinite lengths are not.
    fn head(&mut self, major: u8) -> Decoded<u64> {
        let initial = self.byte()?;
        if initial >> 5 != major {
            return Err(match major {
                0 => "expected an unsigned integer",
                2 => "expected a byte string",
                3 => "expected a text string",
                4 => "expected an array",
                5 => "expected a map",
                _ => "expected a tag",
            });
        }
        let value = match initial & 0x1f {
            small @ 0..24 => u64::from(small),
            24 => u64::from(self.byte()?),
            25 => u64::from(u16::from_be_bytes(array(self.take(2)?)?)),
            26 => u64::from(u32::from_be_bytes(array(self.take(4)?)?)),
            27 => u64::from_be_bytes(array(self.take(8)?)?),
            _ => return Err("indefinite or reserved length"),
        };
        Ok(value)
    }

    fn key(&mut self, expected: &str) -> Decoded<()> {
        let len = self.head(3)?;
        if self.take(len)? != expected.as_bytes() {
            return Err("unexpected or misordered field");
        }
        Ok(())
    }

    fn link(&mut self) -> Decoded<Cid> {
        if self.head(6)? != 42 {
            return Err("expected a CID link (tag 42)");
        }
        let len = self.head(2)?;
        let bytes = self.take(len)?;
        let (&prefix, cid_bytes) = bytes.split_first().ok_or("empty CID link")?;
        if prefix != 0 {
            return Err("CID link without the identity multibase prefix");
        }
        let mut cursor = std::io::Cursor::new(cid_bytes);
        let cid = Cid::read_bytes(&mut cursor).map_err(|_| "malformed CID")?;
        if cursor.position() != cid_bytes.len() as u64 {
            return Err("trailing bytes after CID");
        }
        Ok(cid)
    }

    fn optional_link(&mut self) -> Decoded<Option<Cid>> {
        if self.peek() == Some(0xf6) {
            self.pos += 1;
            return Ok(None);
        }
        self.link().map(Some)
    }
}

fn array<const N: usize>(bytes: &[u8]) -> Decoded<[u8; N]> {
    bytes.try_into().map_err(|_| "truncated")
}

/// A link to another MST node must be in the blessed form: CIDv1, dag-cbor, sha2-256.
fn subtree_link(cid: Option<Cid>) -> Decoded<Option<Link>> {
    match cid {
        Some(cid) if !cids::is_atproto_cid(&cid) || cid.codec() != cids::DAG_CBOR => {
            Err("subtree link is not a CIDv1 dag-cbor sha2-256")
        }
        other => Ok(other.map(Link::Stub)),
    }
}

fn decode_node(reader: &mut Reader<'_>) -> Decoded<Node> {
    if reader.head(5)? != 2 {
        return Err("a node has exactly the fields e and l");
    }
    reader.key("e")?;
    let count = reader.head(4)?;
    if count > MAX_NODE_ENTRIES as u64 {
        return Err("too many entries in one node");
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(count as usize);
    let mut layer = None;
    let mut previous: &[u8] = &[];
    for _ in 0..count {
        if reader.head(5)? != 4 {
            return Err("an entry has exactly the fields k, p, t and v");
        }
        reader.key("k")?;
        let suffix_len = reader.head(2)?;
        let suffix = reader.take(suffix_len)?;
        reader.key("p")?;
        let prefix = reader.head(0)?;
        let prefix = usize::try_from(prefix).ok().filter(|&prefix| prefix <= previous.len());
        let prefix = prefix.ok_or("prefix longer than the previous key")?;
        reader.key("t")?;
        let right = subtree_link(reader.optional_link()?)?;
        reader.key("v")?;
        let value = reader.link()?;

        let mut key = Vec::with_capacity(prefix + suffix.len());
        key.extend_from_slice(&previous[..prefix]);
        key.extend_from_slice(suffix);
        if key.as_slice() <= previous && !entries.is_empty() {
            return Err("keys are not in ascending order");
        }
        let key_height = height(&key);
        if layer.is_some_and(|layer| layer != key_height) {
            return Err("keys of different heights in one node");
        }
        layer = Some(key_height);
        let key = MstKey::from_validated_bytes(key).map_err(|_| "invalid key")?;
        entries.push(Entry { key, value, right });
        previous = entries.last().map_or(&[], |entry| entry.key.as_bytes());
    }
    reader.key("l")?;
    let left = subtree_link(reader.optional_link()?)?;
    Ok(Node { left, entries, layer, cid: OnceLock::new(), bytes: OnceLock::new() })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;

    fn leaf() -> Cid {
        cids::for_dag_cbor(&[0xa0])
    }

    fn entry(key: &str) -> Entry {
        Entry { key: key.parse().unwrap(), value: leaf(), right: None }
    }

    #[test]
    fn the_empty_node_is_the_well_known_empty_tree() {
        // {"e": [], "l": null}; its CID is the `data` of every empty repository.
        let node = Node::empty();
        assert_eq!(node.encode(), [0xa2, 0x61, b'e', 0x80, 0x61, b'l', 0xf6]);
        assert_eq!(node.cid().to_string(), "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm");
    }

    #[test]
    fn a_node_round_trips_through_its_encoding() {
        // Two keys of height 0 sharing the prefix "com.example.record/".
        let keys = ["com.example.record/3jqfcqzm3fo2j", "com.example.record/3jqfcqzm3fp2j"];
        assert!(keys.iter().all(|key| height(key.as_bytes()) == 0));
        let node = Node::new(None, keys.iter().map(|key| entry(key)).collect(), 0);
        let bytes = node.encode();
        let decoded = Node::decode(&bytes, node.cid()).unwrap();
        assert_eq!(decoded.entries.len(), 2);
        assert_eq!(decoded.entries[1].key.as_str(), keys[1]);
        assert_eq!(decoded.layer, Some(0));
        assert_eq!(decoded.encode(), bytes);
    }

    #[test]
    fn a_non_canonical_encoding_is_rejected() {
        // The empty node with the entry count in the long form (0x98 0x00 instead of 0x80).
        let bytes = [0xa2, 0x61, b'e', 0x98, 0x00, 0x61, b'l', 0xf6];
        let error = Node::decode(&bytes, cids::for_dag_cbor(&bytes)).err().unwrap();
        assert!(matches!(error, MstError::InvalidNode { reason: "not the canonical encoding", .. }));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in
            [&[][..], &[0xa2], &[0xa2, 0x61, b'e', 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], &[0xff; 9]]
        {
            assert!(Node::decode(bytes, cids::for_dag_cbor(bytes)).is_err());
        }
    }
}
