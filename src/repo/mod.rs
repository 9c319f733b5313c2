//! Repositories in the database: a block store over `repo_block`, and persisting a commit.

use bytes::Bytes;
use cid::Cid;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

mod batch;
mod error;
pub mod export;
pub mod import;
mod prepare;
pub mod records;
mod staging;
pub mod writer;

use aurora_atproto::blockstore::{BlockMap, BlockStore, BlockStoreError};
use aurora_atproto::repo::CommitData;

use crate::db::entities::{repo_block, repo_root};

/// The blocks of one repository, read through any connection or transaction. Writes are
/// staged in memory: a commit is persisted as a whole by [`persist_commit`].
pub struct SqlBlockStore<'c, C> {
    conn: &'c C,
    did: String,
}

impl<'c, C: ConnectionTrait + Sync> SqlBlockStore<'c, C> {
    pub fn new(conn: &'c C, did: &str) -> Self {
        Self { conn, did: did.to_owned() }
    }
}

impl<C: ConnectionTrait + Sync> BlockStore for SqlBlockStore<'_, C> {
    async fn get(&self, cid: &Cid) -> Result<Option<Bytes>, BlockStoreError> {
        let row = repo_block::Entity::find()
            .filter(repo_block::Column::Did.eq(self.did.as_str()))
            .filter(repo_block::Column::Cid.eq(cid.to_string()))
            .one(self.conn)
            .await
            .map_err(BlockStoreError::backend)?;
        Ok(row.map(|r| Bytes::from(r.content)))
    }

    async fn get_many(&self, cids: &[Cid]) -> Result<BlockMap, BlockStoreError> {
        let mut found = BlockMap::new();
        // Bounded batches keep each statement under the databases' parameter limits.
        for chunk in cids.chunks(500) {
            let rows = repo_block::Entity::find()
                .filter(repo_block::Column::Did.eq(self.did.as_str()))
                .filter(repo_block::Column::Cid.is_in(chunk.iter().map(Cid::to_string)))
                .all(self.conn)
                .await
                .map_err(BlockStoreError::backend)?;
            for row in rows {
                if let Ok(cid) = Cid::try_from(row.cid.as_str()) {
                    found.insert(cid, Bytes::from(row.content));
                }
            }
        }
        Ok(found)
    }

    async fn put(&self, _cid: Cid, _bytes: Bytes) -> Result<(), BlockStoreError> {
        Err(BlockStoreError::backend(std::io::Error::other(
            "repository blocks are written by persist_commit inside the commit's transaction",
        )))
    }
}

/// Writes a commit: its new blocks, the removal of blocks it no longer needs, and the new root.
/// Call inside the transaction that also sequences the commit's event.
pub async fn persist_commit<C: ConnectionTrait>(conn: &C, did: &str, commit: &CommitData) -> Result<(), DbErr> {
    let rev = commit.commit.rev.as_str().to_owned();
    insert_blocks(conn, did, commit.new_blocks.iter().map(|(cid, bytes)| (cid, bytes, rev.as_str()))).await?;
    let removed: Vec<String> =
        commit.removed_blocks.iter().filter(|cid| !commit.new_blocks.contains_key(cid)).map(Cid::to_string).collect();
    for chunk in removed.chunks(500) {
        repo_block::Entity::delete_many()
            .filter(repo_block::Column::Did.eq(did))
            .filter(repo_block::Column::Cid.is_in(chunk.iter().cloned()))
            .exec(conn)
            .await?;
    }
    let root = repo_root::ActiveModel {
        did: Set(did.to_owned()),
        cid: Set(commit.cid.to_string()),
        rev: Set(rev),
        indexed_at: Set(aurora_atproto::syntax::Datetime::now().as_str().to_owned()),
    };
    repo_root::Entity::insert(root)
        .on_conflict(
            OnConflict::column(repo_root::Column::Did)
                .update_columns([repo_root::Column::Cid, repo_root::Column::Rev, repo_root::Column::IndexedAt])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Stores blocks of `did`, each with the rev of the commit that wrote it; a block already
/// stored stays as it is.
pub(crate) async fn insert_blocks<'a, C: ConnectionTrait>(
    conn: &C,
    did: &str,
    blocks: impl IntoIterator<Item = (&'a Cid, &'a Bytes, &'a str)>,
) -> Result<(), DbErr> {
    let rows: Vec<repo_block::ActiveModel> = blocks
        .into_iter()
        .map(|(cid, bytes, rev)| repo_block::ActiveModel {
            did: Set(did.to_owned()),
            cid: Set(cid.to_string()),
            rev: Set(rev.to_owned()),
            size: Set(bytes.len() as i32),
            content: Set(bytes.to_vec()),
        })
        .collect();
    // Few enough parameters per statement for either database.
    for chunk in rows.chunks(100) {
        repo_block::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([repo_block::Column::Did, repo_block::Column::Cid]).do_nothing().to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// The current commit of a repository.
pub async fn root<C: ConnectionTrait>(conn: &C, did: &str) -> Result<Option<repo_root::Model>, DbErr> {
    repo_root::Entity::find_by_id(did.to_owned()).one(conn).await
}

/// The current signed commit of a repository, if it has one.
pub async fn current_commit<C: ConnectionTrait + Sync>(
    conn: &C,
    did: &str,
) -> Result<Option<(repo_root::Model, aurora_atproto::commit::Commit)>, DbErr> {
    let Some(root) = root(conn, did).await? else { return Ok(None) };
    let cid = Cid::try_from(root.cid.as_str()).map_err(|e| DbErr::Custom(format!("bad root CID: {e}")))?;
    let bytes = SqlBlockStore::new(conn, did)
        .get(&cid)
        .await
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .ok_or_else(|| DbErr::Custom(format!("commit block {cid} of {did} is missing")))?;
    let commit = aurora_atproto::commit::Commit::from_bytes(&bytes).map_err(|e| DbErr::Custom(e.to_string()))?;
    Ok(Some((root, commit)))
}

/// How many blocks a repository holds.
pub async fn block_count<C: ConnectionTrait>(conn: &C, did: &str) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    repo_block::Entity::find().filter(repo_block::Column::Did.eq(did)).count(conn).await
}

/// A record as the index knows it.
pub struct IndexedRecord<'a> {
    pub did: &'a str,
    pub uri: &'a str,
    pub collection: &'a str,
    pub rkey: &'a str,
    pub cid: &'a Cid,
    pub rev: &'a str,
    pub indexed_at: &'a str,
}

/// Adds a record to the index, or points an existing entry at its new version.
pub async fn index_record<C: ConnectionTrait>(conn: &C, r: IndexedRecord<'_>) -> Result<(), DbErr> {
    use crate::db::entities::record;
    record::Entity::insert(record::ActiveModel {
        uri: Set(r.uri.to_owned()),
        cid: Set(r.cid.to_string()),
        did: Set(r.did.to_owned()),
        collection: Set(r.collection.to_owned()),
        rkey: Set(r.rkey.to_owned()),
        rev: Set(r.rev.to_owned()),
        indexed_at: Set(r.indexed_at.to_owned()),
        takedown_ref: Set(None),
    })
    .on_conflict(
        OnConflict::column(record::Column::Uri)
            .update_columns([record::Column::Cid, record::Column::Rev, record::Column::IndexedAt])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

/// Records that `uri` references blob `blob_cid`.
pub async fn add_blob_reference<C: ConnectionTrait>(
    conn: &C,
    did: &str,
    uri: &str,
    blob_cid: &str,
) -> Result<(), DbErr> {
    use crate::db::entities::record_blob;
    record_blob::Entity::insert(record_blob::ActiveModel {
        blob_cid: Set(blob_cid.to_owned()),
        record_uri: Set(uri.to_owned()),
        did: Set(did.to_owned()),
    })
    .on_conflict(
        OnConflict::columns([record_blob::Column::BlobCid, record_blob::Column::RecordUri]).do_nothing().to_owned(),
    )
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}
