//! Streaming a whole repository out of a block store as a CAR.

use bytes::Bytes;
use cid::Cid;
use tokio::io::AsyncWrite;

use super::{CarError, CarWriter};
use crate::blockstore::BlockStore;
use crate::cids;
use crate::commit::Commit;
use crate::mst::{decode_node, MstKey};

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportStats {
    /// Blocks written: the commit, every MST node, every record.
    pub blocks: u64,
    /// Records among them.
    pub records: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// What the walk has still to write, newest last.
enum Pending {
    /// An MST node, not yet fetched.
    Node(Cid),
    /// A record, fetched with the rest of its node's records.
    Record(MstKey, Cid, Option<Bytes>),
}

/// Writes the repository whose commit is `commit` to `writer` as a CAR: the commit, then the
/// MST depth-first with each record right after its entry's left subtree, so records come out
/// in key order and a reader can check nodes before the records they name. Memory is bounded by
/// the tree's depth times the records of one node, not by the repository.
pub async fn export_repo<S: BlockStore, W: AsyncWrite + Send + Unpin>(
    store: &S,
    commit: Cid,
    writer: W,
) -> Result<(W, ExportStats), CarError> {
    let commit_bytes = store.get(&commit).await?.ok_or(CarError::MissingBlock(commit))?;
    let data = Commit::from_bytes(&commit_bytes)?.data;
    let mut car = CarWriter::new(writer, commit).await?;
    car.write_block(commit, &commit_bytes).await?;
    let mut stats = ExportStats { blocks: 1, ..ExportStats::default() };

    let mut stack = vec![Pending::Node(data)];
    while let Some(pending) = stack.pop() {
        match pending {
            Pending::Node(cid) => {
                let bytes = store.get(&cid).await?.ok_or(CarError::MissingBlock(cid))?;
                if cids::for_dag_cbor(&bytes) != cid {
                    return Err(CarError::HashMismatch(cid));
                }
                let node = decode_node(&bytes)?;
                car.write_block(cid, &bytes).await?;
                stats.blocks += 1;
                // One query for the node's records rather than one per record.
                let values: Vec<Cid> = node.entries.iter().map(|entry| entry.value).collect();
                let mut records = store.get_many(&values).await?;
                // Pushed in reverse so they pop as: left subtree, entry, its right subtree, ...
                for entry in node.entries.into_iter().rev() {
                    if let Some(right) = entry.right {
                        stack.push(Pending::Node(right));
                    }
                    // Two keys may name one record; the second finds it taken and refetches.
                    let bytes = records.remove(&entry.value);
                    stack.push(Pending::Record(entry.key, entry.value, bytes));
                }
                if let Some(left) = node.left {
                    stack.push(Pending::Node(left));
                }
            }
            Pending::Record(key, cid, bytes) => {
                let bytes = match bytes {
                    Some(bytes) => bytes,
                    None => store.get(&cid).await?.ok_or(CarError::MissingRecord { key, cid })?,
                };
                car.write_block(cid, &bytes).await?;
                stats.blocks += 1;
                stats.records += 1;
            }
        }
    }
    stats.bytes = car.bytes_written();
    Ok((car.finish().await?, stats))
}
