//! A repository over a block store: read records, and turn a batch of writes into a signed
//! commit plus everything the server persists and broadcasts for it.
//!
//! [`Repo::apply_writes`] does not write to the store. It returns a [`CommitData`] — new blocks,
//! blocks no longer referenced, the operations with their previous CIDs, the firehose slice —
//! for the caller to persist in the same transaction that sequences the commit. The `Repo`
//! itself moves on to the new commit; if persisting fails, drop it and load again.

use std::collections::HashSet;

use bytes::Bytes;
use cid::Cid;

use crate::blockstore::{BlockMap, BlockStore, BlockStoreError};
use crate::car::{car_bytes, CarError};
use crate::cids;
use crate::commit::{next_rev, Commit, CommitError, UnsignedCommit};
use crate::crypto::Keypair;
use crate::mst::{diff, InvalidKey, ListOptions, Mst, MstError, MstKey, RecordOp};
use crate::syntax::{Did, Nsid, RecordKey, Tid};

/// Why a repository operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The commit block is not in the store.
    #[error("commit {0} is missing from the store")]
    MissingCommit(Cid),
    /// A create names a record that exists.
    #[error("record {0} already exists")]
    RecordExists(MstKey),
    /// An update or delete names a record that does not exist.
    #[error("record {0} does not exist")]
    RecordNotFound(MstKey),
    /// Two writes in one batch name the same record.
    #[error("more than one write to {0}")]
    DuplicateWrite(MstKey),
    /// Collection and record key do not form a valid repo path.
    #[error(transparent)]
    InvalidKey(#[from] InvalidKey),
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error(transparent)]
    Mst(#[from] MstError),
    #[error(transparent)]
    Store(#[from] BlockStoreError),
    #[error(transparent)]
    Car(#[from] CarError),
}

/// One change in a batch. `record` is the record's DAG-CBOR bytes, as `data::to_dag_cbor`
/// produces them; its CID is computed here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordWrite {
    /// A new record; fails if one exists at the path.
    Create { collection: Nsid, rkey: RecordKey, record: Bytes },
    /// A new version of an existing record; fails if none exists.
    Update { collection: Nsid, rkey: RecordKey, record: Bytes },
    /// Removes an existing record; fails if none exists.
    Delete { collection: Nsid, rkey: RecordKey },
}

impl RecordWrite {
    /// The record's repo path.
    pub fn key(&self) -> Result<MstKey, InvalidKey> {
        let (RecordWrite::Create { collection, rkey, .. }
        | RecordWrite::Update { collection, rkey, .. }
        | RecordWrite::Delete { collection, rkey }) = self;
        MstKey::new(collection.as_str(), rkey.as_str())
    }
}

/// Everything one commit produces.
#[derive(Debug, Clone)]
pub struct CommitData {
    /// The commit's CID.
    pub cid: Cid,
    /// The signed commit.
    pub commit: Commit,
    /// The previous commit's rev (the firehose `since`); `None` for a repository's first.
    pub since: Option<Tid>,
    /// The previous MST root (the firehose `prevData`); `None` for a repository's first.
    pub prev_data: Option<Cid>,
    /// The operations, in the order written, with the CIDs they replaced.
    pub ops: Vec<RecordOp>,
    /// Blocks to store: the commit, new MST nodes, new records.
    pub new_blocks: BlockMap,
    /// Blocks the repository no longer references: the previous commit, replaced MST nodes, and
    /// the previous versions of updated and deleted records. A record CID another, untouched
    /// path still names (byte-identical records) can appear here; the store should keep any
    /// block a current record row still points to.
    pub removed_blocks: Vec<Cid>,
    /// The firehose event's blocks (sync v1.1): the new blocks plus, for every operation, the
    /// MST nodes needed to undo it, so a relay can check the commit against `prevData`.
    pub firehose_blocks: BlockMap,
}

impl CommitData {
    /// The firehose event's `blocks`: a CAR of [`CommitData::firehose_blocks`] rooted at the
    /// commit.
    pub async fn firehose_car(&self) -> Result<Vec<u8>, CarError> {
        // Collected first: a borrowing iterator held across the await would make the future
        // unusable from Send contexts (a higher-ranked closure lifetime).
        let blocks: Vec<(Cid, Bytes)> = self.firehose_blocks.iter().map(|(cid, bytes)| (*cid, bytes.clone())).collect();
        car_bytes(self.cid, blocks).await
    }
}

/// A repository's state apart from its store: what a writer keeps in memory between commits,
/// so the next commit starts from the decoded tree instead of fetching it again.
#[derive(Clone)]
pub struct RepoHead {
    commit_cid: Cid,
    commit: Commit,
    mst: Mst,
}

impl RepoHead {
    /// The commit this state is at.
    pub fn commit_cid(&self) -> Cid {
        self.commit_cid
    }

    /// How many decoded nodes the tree holds beyond those it built itself: a measure of the
    /// memory the state keeps, for callers that bound it.
    pub fn cached_nodes(&self) -> usize {
        self.mst.cached_nodes()
    }
}

/// A repository at one commit, reading through `S`.
pub struct Repo<S> {
    store: S,
    commit_cid: Cid,
    commit: Commit,
    mst: Mst,
}

impl<S: BlockStore> Repo<S> {
    /// The repository at commit `commit_cid`; fetches and decodes the commit only.
    pub async fn load(store: S, commit_cid: Cid) -> Result<Repo<S>, RepoError> {
        let bytes = store.get(&commit_cid).await?.ok_or(RepoError::MissingCommit(commit_cid))?;
        let commit = Commit::from_bytes(&bytes)?;
        let mst = Mst::load(commit.data);
        Ok(Repo { store, commit_cid, commit, mst })
    }

    /// A new repository for `did` holding `writes` (creates only make sense here), signed
    /// with `key`. Nothing is stored: persist the returned [`CommitData`], as after any commit.
    pub async fn create(
        store: S,
        did: Did,
        key: &Keypair,
        writes: Vec<RecordWrite>,
    ) -> Result<(Repo<S>, CommitData), RepoError> {
        let mst = Mst::new();
        let unsigned = UnsignedCommit::new(did, mst.root_cid(), next_rev(None));
        let commit = unsigned.sign(key);
        // A placeholder state that `commit_writes` builds on; it is never persisted.
        let mut repo = Repo { store, commit_cid: commit.cid(), commit, mst };
        let mut data = repo.commit_writes(writes, key, true).await?;
        // The placeholder commit never existed: nothing to remove, nothing came before. With no
        // writes the diff is empty, but the empty tree's node must still be stored.
        data.removed_blocks.clear();
        if !data.new_blocks.contains_key(&data.commit.data) {
            let empty = Mst::new().blocks(&repo.store).await?;
            data.firehose_blocks.extend(empty.clone());
            data.new_blocks.extend(empty);
        }
        Ok((repo, data))
    }

    /// The repository at `head`, reading through `store`; `head` must come from a repository
    /// over the same blocks.
    pub fn from_head(store: S, head: RepoHead) -> Repo<S> {
        Repo { store, commit_cid: head.commit_cid, commit: head.commit, mst: head.mst }
    }

    /// The state to resume from with [`Repo::from_head`].
    pub fn into_head(self) -> RepoHead {
        RepoHead { commit_cid: self.commit_cid, commit: self.commit, mst: self.mst }
    }

    /// The current commit.
    pub fn commit(&self) -> &Commit {
        &self.commit
    }

    /// The current commit's CID.
    pub fn commit_cid(&self) -> Cid {
        self.commit_cid
    }

    /// The current MST.
    pub fn mst(&self) -> &Mst {
        &self.mst
    }

    /// The store the repository reads through.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The CID of the record at `collection`/`rkey`.
    pub async fn record_cid(&self, collection: &Nsid, rkey: &RecordKey) -> Result<Option<Cid>, RepoError> {
        let key = MstKey::new(collection.as_str(), rkey.as_str())?;
        Ok(self.mst.get(&self.store, &key).await?)
    }

    /// The record at `collection`/`rkey`: its CID and DAG-CBOR bytes.
    pub async fn record(&self, collection: &Nsid, rkey: &RecordKey) -> Result<Option<(Cid, Bytes)>, RepoError> {
        let Some(cid) = self.record_cid(collection, rkey).await? else {
            return Ok(None);
        };
        let bytes = self.store.get(&cid).await?.ok_or(MstError::MissingBlock(cid))?;
        Ok(Some((cid, bytes)))
    }

    /// Entries of the MST (path, record CID) as `options` selects them.
    pub async fn list(&self, options: ListOptions) -> Result<Vec<(MstKey, Cid)>, RepoError> {
        Ok(self.mst.list(&self.store, options).await?)
    }

    /// The blocks proving what `collection`/`rkey` holds at the current commit (or that it is
    /// absent): the commit, the MST path, and the record if present (`com.atproto.sync.getRecord`).
    pub async fn record_proof(&self, collection: &Nsid, rkey: &RecordKey) -> Result<BlockMap, RepoError> {
        let key = MstKey::new(collection.as_str(), rkey.as_str())?;
        let mut blocks = self.mst.proof(&self.store, &key).await?;
        let (cid, bytes) = self.commit.to_block();
        blocks.insert(cid, bytes);
        if let Some((cid, bytes)) = self.record(collection, rkey).await? {
            blocks.insert(cid, bytes);
        }
        Ok(blocks)
    }

    /// Applies `writes` atomically as one commit signed with `key`, at a rev after the current
    /// one. See the [module docs](self) for what is (not) persisted.
    pub async fn apply_writes(&mut self, writes: Vec<RecordWrite>, key: &Keypair) -> Result<CommitData, RepoError> {
        self.commit_writes(writes, key, false).await
    }

    async fn commit_writes(
        &mut self,
        writes: Vec<RecordWrite>,
        key: &Keypair,
        first: bool,
    ) -> Result<CommitData, RepoError> {
        let before = self.mst.clone();
        let mut mst = self.mst.clone();
        let mut ops = Vec::with_capacity(writes.len());
        let mut records = BlockMap::new();
        let mut seen = HashSet::new();
        for write in writes {
            let key = write.key()?;
            if !seen.insert(key.clone()) {
                return Err(RepoError::DuplicateWrite(key));
            }
            let op = match write {
                RecordWrite::Create { record, .. } => {
                    let cid = cids::for_dag_cbor(&record);
                    if mst.insert(&self.store, &key, cid).await?.is_some() {
                        return Err(RepoError::RecordExists(key));
                    }
                    records.insert(cid, record);
                    RecordOp::Create { key, cid }
                }
                RecordWrite::Update { record, .. } => {
                    let cid = cids::for_dag_cbor(&record);
                    let Some(prev) = mst.insert(&self.store, &key, cid).await? else {
                        return Err(RepoError::RecordNotFound(key));
                    };
                    records.insert(cid, record);
                    RecordOp::Update { key, cid, prev }
                }
                RecordWrite::Delete { .. } => {
                    let Some(prev) = mst.delete(&self.store, &key).await? else {
                        return Err(RepoError::RecordNotFound(key));
                    };
                    RecordOp::Delete { key, prev }
                }
            };
            ops.push(op);
        }

        let tree_diff = diff(&self.store, &before, &mst).await?;
        let rev = if first { self.commit.rev.clone() } else { next_rev(Some(&self.commit.rev)) };
        let commit = UnsignedCommit::new(self.commit.did.clone(), mst.root_cid(), rev).sign(key);
        let (commit_cid, commit_bytes) = commit.to_block();

        let mut new_blocks = tree_diff.new_blocks;
        new_blocks.extend(records);
        new_blocks.insert(commit_cid, commit_bytes);

        let written: HashSet<Cid> = ops.iter().filter_map(RecordOp::cid).collect();
        let mut removed_blocks = tree_diff.removed_blocks;
        removed_blocks.extend(ops.iter().filter_map(RecordOp::prev).filter(|cid| !written.contains(cid)));
        if !first {
            removed_blocks.push(self.commit_cid);
        }
        removed_blocks.sort();
        removed_blocks.dedup();

        let mut firehose_blocks = new_blocks.clone();
        for op in &ops {
            firehose_blocks.extend(mst.covering_proof(&self.store, op.key()).await?);
        }

        let data = CommitData {
            cid: commit_cid,
            since: (!first).then(|| self.commit.rev.clone()),
            prev_data: (!first).then_some(before.root_cid()),
            commit: commit.clone(),
            ops,
            new_blocks,
            removed_blocks,
            firehose_blocks,
        };
        self.mst = mst;
        self.commit = commit;
        self.commit_cid = commit_cid;
        Ok(data)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;
    use crate::blockstore::MemoryBlockStore;
    use crate::crypto::KeyType;
    use crate::mst::verify_inversion;

    fn nsid(text: &str) -> Nsid {
        text.parse().unwrap()
    }

    fn rkey(text: &str) -> RecordKey {
        text.parse().unwrap()
    }

    fn record(text: &str) -> Bytes {
        // {"text": <text>} in DAG-CBOR; short texts only.
        let mut bytes = vec![0xa1, 0x64, b't', b'e', b'x', b't', 0x60 | text.len() as u8];
        bytes.extend_from_slice(text.as_bytes());
        Bytes::from(bytes)
    }

    fn create(collection: &str, key: &str, text: &str) -> RecordWrite {
        RecordWrite::Create { collection: nsid(collection), rkey: rkey(key), record: record(text) }
    }

    async fn persist(store: &MemoryBlockStore, data: &CommitData) {
        store.put_many(data.new_blocks.clone()).await.unwrap();
        for cid in &data.removed_blocks {
            store.remove(cid);
        }
    }

    #[tokio::test]
    async fn a_batch_of_writes_becomes_a_commit_that_reloads_and_inverts() {
        let store = MemoryBlockStore::new();
        let key = Keypair::generate(KeyType::K256);
        let did: Did = "did:plc:abcdefghijklmnopqrstuvwx".parse().unwrap();
        let writes: Vec<RecordWrite> = (0..20)
            .map(|n| create("app.bsky.feed.post", &format!("3jzfcijpj2z{n:02}"), &format!("post {n}")))
            .collect();
        let (mut repo, first) = Repo::create(&store, did.clone(), &key, writes).await.unwrap();
        assert_eq!(first.since, None);
        assert_eq!(first.ops.len(), 20);
        first.commit.verify(&key.public_key()).unwrap();
        persist(&store, &first).await;

        let writes = vec![
            create("app.bsky.feed.like", "3jzfcijpj2zaa", "like"),
            RecordWrite::Update {
                collection: nsid("app.bsky.feed.post"),
                rkey: rkey("3jzfcijpj2z03"),
                record: record("edited"),
            },
            RecordWrite::Delete { collection: nsid("app.bsky.feed.post"), rkey: rkey("3jzfcijpj2z07") },
        ];
        let second = repo.apply_writes(writes, &key).await.unwrap();
        assert_eq!(second.since.as_ref(), Some(&first.commit.rev));
        assert!(second.commit.rev > first.commit.rev);
        assert_eq!(second.prev_data, Some(first.commit.data));
        assert!(
            matches!(&second.ops[1], RecordOp::Update { prev, .. } if *prev == cids::for_dag_cbor(&record("post 3")))
        );
        assert!(second.removed_blocks.contains(&first.cid));
        persist(&store, &second).await;

        // The firehose slice alone proves the step from prevData.
        verify_inversion(second.commit.data, first.commit.data, &second.ops, &second.firehose_blocks).unwrap();

        // The store now holds exactly what the new commit needs.
        let reloaded = Repo::load(&store, second.cid).await.unwrap();
        let (cid, bytes) = reloaded.record(&nsid("app.bsky.feed.post"), &rkey("3jzfcijpj2z03")).await.unwrap().unwrap();
        assert_eq!(bytes, record("edited"));
        assert_eq!(cid, cids::for_dag_cbor(&bytes));
        assert_eq!(reloaded.record(&nsid("app.bsky.feed.post"), &rkey("3jzfcijpj2z07")).await.unwrap(), None);
        assert_eq!(reloaded.list(ListOptions::all()).await.unwrap().len(), 20);
        let expected = store.len();
        let needed = reloaded.mst().blocks(&store).await.unwrap().len() + 1 + 20; // nodes, commit, records
        assert_eq!(expected, needed, "no stale blocks left behind");
    }

    #[tokio::test]
    async fn a_repository_without_records_stores_the_empty_tree() {
        let store = MemoryBlockStore::new();
        let key = Keypair::generate(KeyType::K256);
        let did: Did = "did:plc:abcdefghijklmnopqrstuvwx".parse().unwrap();
        let (_, data) = Repo::create(&store, did, &key, Vec::new()).await.unwrap();
        assert_eq!(data.new_blocks.len(), 2, "the commit and the empty MST node");
        assert!(data.new_blocks.contains_key(&data.commit.data));
        assert!(data.removed_blocks.is_empty());
        persist(&store, &data).await;
        let repo = Repo::load(&store, data.cid).await.unwrap();
        assert!(repo.list(ListOptions::all()).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn conflicting_writes_are_refused_without_changing_the_repo() {
        let store = MemoryBlockStore::new();
        let key = Keypair::generate(KeyType::P256);
        let did: Did = "did:plc:abcdefghijklmnopqrstuvwx".parse().unwrap();
        let (mut repo, first) =
            Repo::create(&store, did, &key, vec![create("app.bsky.feed.post", "a", "x")]).await.unwrap();
        persist(&store, &first).await;

        let again = vec![create("app.bsky.feed.post", "a", "y")];
        assert!(matches!(repo.apply_writes(again, &key).await, Err(RepoError::RecordExists(_))));
        let missing = vec![RecordWrite::Delete { collection: nsid("app.bsky.feed.post"), rkey: rkey("b") }];
        assert!(matches!(repo.apply_writes(missing, &key).await, Err(RepoError::RecordNotFound(_))));
        let twice = vec![create("app.bsky.feed.post", "c", "1"), create("app.bsky.feed.post", "c", "2")];
        assert!(matches!(repo.apply_writes(twice, &key).await, Err(RepoError::DuplicateWrite(_))));
        assert_eq!(repo.commit_cid(), first.cid);
        assert_eq!(repo.mst().root_cid(), first.commit.data);
    }

    #[tokio::test]
    async fn a_record_proof_holds_the_commit_path_and_record() {
        let store = MemoryBlockStore::new();
        let key = Keypair::generate(KeyType::K256);
        let did: Did = "did:plc:abcdefghijklmnopqrstuvwx".parse().unwrap();
        let writes = (0..50).map(|n| create("app.bsky.feed.post", &format!("k{n}"), "p")).collect();
        let (repo, data) = Repo::create(&store, did, &key, writes).await.unwrap();
        persist(&store, &data).await;
        let proof = repo.record_proof(&nsid("app.bsky.feed.post"), &rkey("k7")).await.unwrap();
        assert!(proof.contains_key(&repo.commit_cid()));
        assert!(proof.contains_key(&cids::for_dag_cbor(&record("p"))));
        let partial = MemoryBlockStore::from_blocks(proof);
        let found =
            Mst::load(repo.commit().data).get(&partial, &MstKey::new("app.bsky.feed.post", "k7").unwrap()).await;
        assert_eq!(found.unwrap(), Some(cids::for_dag_cbor(&record("p"))));
    }
}
