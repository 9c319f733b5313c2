//! Storing a batch of consecutive commits to one repository in one transaction. The batch is
//! written as its net effect — each block, record row and blob reference as the last commit to
//! touch it left it — in a handful of multi-row statements, which is exactly what storing the
//! commits one by one would leave behind. Each commit still gets its own `#commit` event.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use cid::Cid;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QuerySelect, Set, TransactionTrait};

use super::writer::Built;
use crate::context::AppContext;
use crate::db::entities::{actor, blob, record, record_blob, repo_block, repo_root};
use crate::sequencer;

/// Rows per multi-row statement: few enough parameters for either database.
const CHUNK: usize = 100;

/// Stores `built` (consecutive commits, oldest first) and their events; the blobs that lost a
/// reference and may now be unreferenced.
/// Why a batch was not stored.
#[derive(Debug)]
pub(super) enum StoreError {
    /// The account may not write now, or the repository is no longer at the commit the batch
    /// was built on.
    Refused,
    Db(DbErr),
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        StoreError::Db(e)
    }
}

pub(super) async fn store(ctx: &AppContext, did: &str, built: &[&Built]) -> Result<Vec<String>, StoreError> {
    let (Some(first), Some(last)) = (built.first(), built.last()) else { return Ok(Vec::new()) };
    let mut events = Vec::with_capacity(built.len());
    for commit in built {
        events.push(sequencer::commit_event(did, &commit.data).await?);
    }
    let now = crate::account::now();

    // The net effect on blocks: present (with bytes) or gone, per the last commit touching it.
    let mut blocks: HashMap<Cid, Option<(&Bytes, &str)>> = HashMap::new();
    for commit in built {
        let rev = commit.data.commit.rev.as_str();
        for cid in &commit.data.removed_blocks {
            blocks.insert(*cid, None);
        }
        for (cid, bytes) in commit.data.new_blocks.iter() {
            blocks.insert(*cid, Some((bytes, rev)));
        }
    }
    // The net effect on records, and on their blob references.
    let mut records: HashMap<&str, Option<(&str, &str, Cid, &str)>> = HashMap::new();
    let mut references: HashMap<&str, Vec<String>> = HashMap::new();
    let mut stored_before: BTreeSet<&str> = BTreeSet::new();
    let mut released: BTreeSet<String> = BTreeSet::new();
    for commit in built {
        let rev = commit.data.commit.rev.as_str();
        for (((outcome, (collection, rkey)), blobs), created) in
            commit.outcomes.iter().zip(&commit.paths).zip(&commit.blobs).zip(&commit.created)
        {
            let uri = outcome.uri.as_str();
            if !created && !records.contains_key(uri) {
                stored_before.insert(uri);
            }
            records.insert(uri, outcome.cid.map(|cid| (collection.as_str(), rkey.as_str(), cid, rev)));
            let now_referenced: Vec<String> = blobs.iter().map(|b| b.cid.to_string()).collect();
            if let Some(earlier) = references.insert(uri, now_referenced) {
                released.extend(earlier);
            }
        }
    }

    let txn = ctx.db.begin().await?;
    let present = blocks.iter().filter_map(|(cid, entry)| entry.map(|(bytes, rev)| (cid, bytes, rev)));
    super::insert_blocks(&txn, did, present).await?;
    let gone: Vec<String> =
        blocks.iter().filter(|(_, entry)| entry.is_none()).map(|(cid, _)| cid.to_string()).collect();
    for chunk in gone.chunks(500) {
        repo_block::Entity::delete_many()
            .filter(repo_block::Column::Did.eq(did))
            .filter(repo_block::Column::Cid.is_in(chunk.iter().cloned()))
            .exec(&txn)
            .await?;
    }

    let indexed: Vec<record::ActiveModel> = records
        .iter()
        .filter_map(|(uri, entry)| entry.map(|entry| (uri, entry)))
        .map(|(uri, (collection, rkey, cid, rev))| record::ActiveModel {
            uri: Set((*uri).to_owned()),
            cid: Set(cid.to_string()),
            did: Set(did.to_owned()),
            collection: Set(collection.to_owned()),
            rkey: Set(rkey.to_owned()),
            rev: Set(rev.to_owned()),
            indexed_at: Set(now.clone()),
            takedown_ref: Set(None),
        })
        .collect();
    for chunk in indexed.chunks(CHUNK) {
        record::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::column(record::Column::Uri)
                    .update_columns([record::Column::Cid, record::Column::Rev, record::Column::IndexedAt])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
    }
    let deleted: Vec<&str> = records.iter().filter(|(_, entry)| entry.is_none()).map(|(uri, _)| *uri).collect();
    for chunk in deleted.chunks(500) {
        record::Entity::delete_many().filter(record::Column::Uri.is_in(chunk.iter().copied())).exec(&txn).await?;
    }

    // Blob references: records stored before this batch drop their old ones; every record
    // now written adds its current ones, and every referenced blob stops being temporary.
    let stored_before: Vec<&str> = stored_before.into_iter().collect();
    for chunk in stored_before.chunks(500) {
        let old: Vec<String> = record_blob::Entity::find()
            .select_only()
            .column(record_blob::Column::BlobCid)
            .filter(record_blob::Column::RecordUri.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(&txn)
            .await?;
        released.extend(old);
        record_blob::Entity::delete_many()
            .filter(record_blob::Column::RecordUri.is_in(chunk.iter().copied()))
            .exec(&txn)
            .await?;
    }
    let referencing: Vec<record_blob::ActiveModel> = references
        .iter()
        .filter(|(uri, _)| records.get(*uri).is_some_and(Option::is_some))
        .flat_map(|(uri, cids)| {
            cids.iter().map(|cid| record_blob::ActiveModel {
                blob_cid: Set(cid.clone()),
                record_uri: Set((*uri).to_owned()),
                did: Set(did.to_owned()),
            })
        })
        .collect();
    for chunk in referencing.chunks(CHUNK) {
        record_blob::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([record_blob::Column::BlobCid, record_blob::Column::RecordUri])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
    }
    let claimed: BTreeSet<&str> =
        referencing.iter().filter_map(|r| r.blob_cid.try_as_ref()).map(String::as_str).collect();
    let claimed: Vec<&str> = claimed.into_iter().collect();
    for chunk in claimed.chunks(500) {
        blob::Entity::update_many()
            .col_expr(blob::Column::TempKey, Expr::value(Option::<String>::None))
            .filter(blob::Column::Did.eq(did))
            .filter(blob::Column::Cid.is_in(chunk.iter().copied()))
            .exec(&txn)
            .await?;
    }

    // The root moves only from the commit the batch was built on, and only while the account
    // is active: one statement checks both, so a writer never needs a separate read first.
    let active = Query::select()
        .expr(Expr::val(1))
        .from(actor::Entity)
        .and_where(Expr::col((actor::Entity, actor::Column::Did)).eq(did))
        .and_where(Expr::col((actor::Entity, actor::Column::TakedownRef)).is_null())
        .and_where(Expr::col((actor::Entity, actor::Column::DeactivatedAt)).is_null())
        .and_where(Expr::col((actor::Entity, actor::Column::DeletedAt)).is_null())
        .to_owned();
    let moved = repo_root::Entity::update_many()
        .col_expr(repo_root::Column::Cid, Expr::value(last.data.cid.to_string()))
        .col_expr(repo_root::Column::Rev, Expr::value(last.data.commit.rev.as_str()))
        .col_expr(repo_root::Column::IndexedAt, Expr::value(aurora_atproto::syntax::Datetime::now().as_str()))
        .filter(repo_root::Column::Did.eq(did))
        .filter(repo_root::Column::Cid.eq(first.base.to_string()))
        .filter(Expr::exists(active))
        .exec(&txn)
        .await?;
    if moved.rows_affected != 1 {
        return Err(StoreError::Refused);
    }
    sequencer::append_all(&txn, events).await?;
    txn.commit().await?;
    // Only blobs no current record of this batch references may have become unreferenced.
    let kept: BTreeSet<&str> = claimed.iter().copied().collect();
    Ok(released.into_iter().filter(|cid| !kept.contains(cid.as_str())).collect())
}
