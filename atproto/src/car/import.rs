//! Reading a whole repository from a CAR and verifying it end to end.

use bytes::Bytes;
use cid::Cid;
use tokio::io::AsyncRead;

use super::walk::{walk_tree, Visit};
use super::{read_car, CarError, CarLimits};
use crate::blockstore::BlockMap;
use crate::commit::Commit;
use crate::crypto::PublicKey;
use crate::mst::MstKey;
use crate::syntax::Did;

/// A repository whose every block has been checked.
#[derive(Debug, Clone)]
pub struct VerifiedRepo {
    /// The commit's CID (the CAR's root).
    pub commit_cid: Cid,
    /// The signed commit.
    pub commit: Commit,
    /// Every record: key, CID, bytes, in key order.
    pub records: Vec<(MstKey, Cid, Bytes)>,
    /// The blocks the repository consists of (commit, MST nodes, records) and nothing else, so
    /// that unrelated blocks smuggled into the file never reach storage.
    pub blocks: BlockMap,
}

/// Reads a repository CAR under `limits` and verifies it with [`verify_repo`].
pub async fn import_repo<R: AsyncRead + Unpin + Send>(
    reader: R,
    limits: CarLimits,
    did: &Did,
    key: &PublicKey,
) -> Result<VerifiedRepo, CarError> {
    let (root, blocks) = read_car(reader, limits).await?;
    verify_repo(root, blocks, did, key).await
}

/// Verifies the repository whose commit is `root` among `blocks` (each already checked
/// against its CID): the commit is well-formed, for `did`, and signed by `key`; the MST is
/// complete and well-formed (canonical nodes, keys at their heights, in order across the whole
/// tree); every record it names is present.
pub async fn verify_repo(root: Cid, blocks: BlockMap, did: &Did, key: &PublicKey) -> Result<VerifiedRepo, CarError> {
    let commit_bytes = blocks.get(&root).ok_or(CarError::RootBlockMissing(root))?.clone();
    let commit = Commit::from_bytes(&commit_bytes)?;
    commit.check_did(did)?;
    commit.verify(key)?;

    let mut kept = BlockMap::from([(root, commit_bytes)]);
    let mut records = Vec::new();
    walk_tree(
        commit.data,
        |cid| Ok(blocks.get(cid).cloned()),
        |visit| {
            match visit {
                Visit::Node { cid, bytes } => kept.insert(*cid, bytes.clone()),
                Visit::Record { key, cid, bytes } => {
                    records.push((key.clone(), *cid, bytes.clone()));
                    kept.insert(*cid, bytes.clone())
                }
            };
            Ok(())
        },
    )?;
    Ok(VerifiedRepo { commit_cid: root, commit, records, blocks: kept })
}
