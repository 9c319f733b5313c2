//! Repositories in the database: a block store over `repo_block`, and persisting a commit.

use aurora_atproto::syntax::{AtUri, Did, Nsid, Tid};
use bytes::Bytes;
use cid::Cid;
use std::sync::LazyLock;

use sea_orm::sea_query::{DeleteStatement, Expr, InsertStatement, OnConflict, Query, Value};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

mod batch;
pub mod download;
mod error;
pub mod export;
pub mod hosting;
pub mod import;
mod prepare;
pub mod records;
pub mod rendered;
mod staging;
pub(crate) mod store;
pub mod writer;

use aurora_atproto::blockstore::{BlockMap, BlockStore, BlockStoreError};
use aurora_atproto::repo::CommitData;

use crate::db::entities::{repo_block, repo_root};

/// The blocks of one repository, read through any connection or transaction. Writes are
/// staged in memory: a commit is persisted as a whole by [`persist_commit`].
pub struct SqlBlockStore<'c, C> {
    conn: &'c C,
    did: Did,
}

impl<'c, C: ConnectionTrait + Sync> SqlBlockStore<'c, C> {
    pub fn new(conn: &'c C, did: &Did) -> Self {
        Self { conn, did: did.clone() }
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
                if let Ok(cid) = row.cid.to_cid() {
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

/// Writes a commit through `backend`: its new blocks, the removal of blocks it no longer needs,
/// and the new root. Call inside the transaction that also sequences the commit's event.
pub(crate) async fn persist_commit<B: store::Backend>(
    backend: &mut B,
    did: &Did,
    commit: &CommitData,
) -> Result<(), store::StoreError> {
    let rev = &commit.commit.rev;
    let blocks = commit.new_blocks.iter().map(|(cid, bytes)| block_row(did, cid, bytes, rev)).collect();
    backend.insert(block_insert(), blocks).await?;
    let removed = commit
        .removed_blocks
        .iter()
        .filter(|cid| !commit.new_blocks.contains_key(cid))
        .map(|cid| Value::from(cid.to_string()))
        .collect();
    backend.delete_each(&blocks_of(did), repo_block::Column::Cid, removed).await?;
    backend.insert(root_upsert(), vec![root_row(did, &commit.cid, rev)]).await
}

/// The statement that stores repository blocks (a block already stored stays as it is); rows
/// come from [`block_row`].
pub(crate) fn block_insert() -> &'static store::Insert {
    static INSERT: LazyLock<store::Insert> = LazyLock::new(|| {
        let insert = Query::insert()
            .into_table(repo_block::Entity)
            .columns([
                repo_block::Column::Did,
                repo_block::Column::Cid,
                repo_block::Column::Rev,
                repo_block::Column::Size,
                repo_block::Column::Content,
            ])
            .on_conflict(
                OnConflict::columns([repo_block::Column::Did, repo_block::Column::Cid]).do_nothing().to_owned(),
            )
            .to_owned();
        store::Insert::new(insert)
    });
    &INSERT
}

/// A block of `did`, written by the commit of `rev`, for [`block_insert`].
pub(crate) fn block_row(did: &Did, cid: &Cid, bytes: &Bytes, rev: &Tid) -> Vec<Value> {
    vec![did.into(), cid.to_string().into(), rev.into(), (bytes.len() as i32).into(), bytes.to_vec().into()]
}

/// Deletes blocks of `did` (narrowed further by the caller).
pub(crate) fn blocks_of(did: &Did) -> DeleteStatement {
    Query::delete().from_table(repo_block::Entity).and_where(Expr::col(repo_block::Column::Did).eq(did)).to_owned()
}

/// Where a record is in its repository.
pub(crate) struct RecordKey<'a> {
    pub uri: &'a AtUri,
    pub collection: &'a Nsid,
    pub rkey: &'a aurora_atproto::syntax::RecordKey,
}

/// The columns of a record's row in the index (into `record`, or a table like it), in the
/// order of [`record_row`].
pub(crate) fn record_insert() -> InsertStatement {
    use crate::db::entities::record;
    Query::insert()
        .into_table(record::Entity)
        .columns([
            record::Column::Uri,
            record::Column::Cid,
            record::Column::Did,
            record::Column::Collection,
            record::Column::Rkey,
            record::Column::Rev,
            record::Column::IndexedAt,
            record::Column::TakedownRef,
        ])
        .to_owned()
}

/// The statement that adds records to the index or, for a record already there, moves it to
/// its new version; rows come from [`record_row`].
pub(crate) fn record_upsert() -> &'static store::Insert {
    use crate::db::entities::record;
    static INSERT: LazyLock<store::Insert> = LazyLock::new(|| {
        let upsert = record_insert()
            .on_conflict(
                OnConflict::column(record::Column::Uri)
                    .update_columns([record::Column::Cid, record::Column::Rev, record::Column::IndexedAt])
                    .to_owned(),
            )
            .to_owned();
        store::Insert::new(upsert)
    });
    &INSERT
}

/// A record of `did` at `key`, as of `rev`, for [`record_insert`].
pub(crate) fn record_row(did: &Did, key: &RecordKey<'_>, cid: &Cid, rev: &Tid, indexed_at: &str) -> Vec<Value> {
    vec![
        key.uri.into(),
        cid.to_string().into(),
        did.into(),
        key.collection.into(),
        key.rkey.into(),
        rev.into(),
        indexed_at.into(),
        Option::<String>::None.into(),
    ]
}

/// The statement that records which blobs a record references; rows come from
/// [`blob_reference_row`].
pub(crate) fn blob_reference_insert() -> &'static store::Insert {
    use crate::db::entities::record_blob;
    static INSERT: LazyLock<store::Insert> = LazyLock::new(|| {
        let insert = Query::insert()
            .into_table(record_blob::Entity)
            .columns([record_blob::Column::BlobCid, record_blob::Column::RecordUri, record_blob::Column::Did])
            .on_conflict(
                OnConflict::columns([record_blob::Column::BlobCid, record_blob::Column::RecordUri])
                    .do_nothing()
                    .to_owned(),
            )
            .to_owned();
        store::Insert::new(insert)
    });
    &INSERT
}

/// Record `uri` of `did` references blob `cid`, for [`blob_reference_insert`].
pub(crate) fn blob_reference_row(did: &Did, uri: &AtUri, cid: &Cid) -> Vec<Value> {
    vec![cid.to_string().into(), uri.into(), did.into()]
}

/// The statement that makes a commit the repository's root, whatever it was; rows come from
/// [`root_row`].
pub(crate) fn root_upsert() -> &'static store::Insert {
    static INSERT: LazyLock<store::Insert> = LazyLock::new(|| {
        let upsert = Query::insert()
            .into_table(repo_root::Entity)
            .columns([
                repo_root::Column::Did,
                repo_root::Column::Cid,
                repo_root::Column::Rev,
                repo_root::Column::IndexedAt,
            ])
            .on_conflict(
                OnConflict::column(repo_root::Column::Did)
                    .update_columns([repo_root::Column::Cid, repo_root::Column::Rev, repo_root::Column::IndexedAt])
                    .to_owned(),
            )
            .to_owned();
        store::Insert::new(upsert)
    });
    &INSERT
}

/// `did`'s root is now commit `cid` of `rev`, for [`root_upsert`].
pub(crate) fn root_row(did: &Did, cid: &Cid, rev: &Tid) -> Vec<Value> {
    vec![did.into(), cid.to_string().into(), rev.into(), aurora_atproto::syntax::Datetime::now().as_str().into()]
}

/// The current commit of a repository.
pub async fn root<C: ConnectionTrait>(conn: &C, did: &Did) -> Result<Option<repo_root::Model>, DbErr> {
    repo_root::Entity::find_by_id(did.clone()).one(conn).await
}

/// The current signed commit of a repository, if it has one.
pub async fn current_commit<C: ConnectionTrait + Sync>(
    conn: &C,
    did: &Did,
) -> Result<Option<(repo_root::Model, aurora_atproto::commit::Commit)>, DbErr> {
    let Some(root) = root(conn, did).await? else { return Ok(None) };
    let cid = root.cid.to_cid().map_err(|e| DbErr::Custom(format!("bad root CID: {e}")))?;
    let bytes = SqlBlockStore::new(conn, did)
        .get(&cid)
        .await
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .ok_or_else(|| DbErr::Custom(format!("commit block {cid} of {did} is missing")))?;
    let commit = aurora_atproto::commit::Commit::from_bytes(&bytes).map_err(|e| DbErr::Custom(e.to_string()))?;
    Ok(Some((root, commit)))
}

/// How many blocks a repository holds.
pub async fn block_count<C: ConnectionTrait>(conn: &C, did: &Did) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    repo_block::Entity::find().filter(repo_block::Column::Did.eq(did)).count(conn).await
}
