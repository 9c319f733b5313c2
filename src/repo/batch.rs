//! Storing a batch of consecutive commits to one repository in one transaction. The batch is
//! written as its net effect — each block, record row and blob reference as the last commit to
//! touch it left it — which is exactly what storing the commits one by one would leave behind.
//! Each commit still gets its own `#commit` event.
//!
//! On SQLite the transaction runs on the server's own writer connection, statement after
//! statement on its thread (see [`crate::db::SqliteWriter`]); on PostgreSQL it goes through
//! the pool in a handful of multi-row statements. Either way it runs beside its caller, which
//! builds the repository's next commits meanwhile.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;
use futures_util::future::Either;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, Set, TransactionTrait};

use super::writer::Built;
use crate::context::AppContext;
use crate::db::entities::{actor, blob, record, record_blob, repo_block, repo_root};
use crate::sequencer::{self, NewEvent};

/// Rows per multi-row statement: few enough parameters for either database.
const CHUNK: usize = 100;
/// Values per `IN (…)` list.
const IN_LIST: usize = 500;

/// Why a batch was not stored.
#[derive(Debug, thiserror::Error)]
pub(super) enum StoreError {
    /// The account may not write now, or the repository is no longer at the commit the batch
    /// was built on.
    #[error("the repository's root did not move")]
    Refused,
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// One record row as the batch leaves it.
struct RecordRow<'a> {
    uri: &'a str,
    collection: &'a str,
    rkey: &'a str,
    cid: String,
    rev: &'a str,
}

/// What storing the batch changes, worked out before the transaction starts.
struct NetEffect<'a> {
    /// Blocks present after the batch, with the rev of the commit that wrote each.
    blocks: Vec<(&'a Cid, &'a Bytes, &'a str)>,
    /// Blocks the batch's tree no longer holds.
    gone: Vec<String>,
    records: Vec<RecordRow<'a>>,
    deleted: Vec<&'a str>,
    /// Records written by the batch that existed before it: their stored blob references are
    /// replaced.
    stored_before: Vec<&'a str>,
    /// (record, blob) references of the records the batch leaves in place.
    references: Vec<(&'a str, String)>,
    /// Blobs now referenced, which stop being temporary.
    claimed: Vec<String>,
    /// Blobs an earlier commit of this batch referenced and a later one dropped.
    released: BTreeSet<String>,
    /// The commit the batch was built on, and the one it leaves as the root.
    base: String,
    root: String,
    rev: &'a str,
    now: String,
    events: Vec<NewEvent>,
}

/// What storing a batch left to do.
#[derive(Default)]
pub(super) struct Stored {
    /// Blobs that lost a reference and may now be unreferenced.
    pub(super) released: Vec<String>,
    /// The sequence number of the batch's last event.
    pub(super) last_seq: i64,
}

/// Starts storing `commits` (consecutive, oldest first) with their `events`: on SQLite's writer
/// thread, or through the pool on a task of its own. The store goes on whether or not the
/// returned future is polled, so the caller can build the next commits meanwhile; the future
/// resolves to what was stored, with the commits handed back.
pub(super) fn store(
    ctx: &Arc<AppContext>,
    did: &str,
    commits: Vec<Built>,
    events: Vec<NewEvent>,
) -> impl Future<Output = Result<(Stored, Vec<Built>), StoreError>> + Send + 'static {
    let did = did.to_owned();
    match &ctx.sqlite_writer {
        Some(writer) => Either::Left(writer.transaction(move |txn| {
            let stored = match NetEffect::of(&commits, events) {
                Some(mut effect) => {
                    let (released, last_seq) = store_sqlite(txn, &did, &mut effect)?;
                    effect.stored(released, last_seq)
                }
                None => Stored::default(),
            };
            let last_seq = stored.last_seq;
            Ok::<_, StoreError>(((stored, commits), last_seq))
        })),
        None => {
            let ctx = ctx.clone();
            let task = tokio::spawn(async move {
                let stored = match NetEffect::of(&commits, events) {
                    Some(mut effect) => {
                        let (released, last_seq) = store_pooled(&ctx, &did, &mut effect).await?;
                        effect.stored(released, last_seq)
                    }
                    None => Stored::default(),
                };
                Ok((stored, commits))
            });
            Either::Right(async move {
                task.await.unwrap_or_else(|e| Err(DbErr::Custom(format!("the store did not finish: {e}")).into()))
            })
        }
    }
}

impl<'a> NetEffect<'a> {
    fn of(built: &'a [Built], events: Vec<NewEvent>) -> Option<NetEffect<'a>> {
        let (Some(first), Some(last)) = (built.first(), built.last()) else { return None };

        // Per block: present (with bytes) or gone, as the last commit touching it left it.
        let mut blocks: HashMap<&Cid, Option<(&Bytes, &str)>> = HashMap::new();
        for commit in built {
            let rev = commit.data.commit.rev.as_str();
            for cid in &commit.data.removed_blocks {
                blocks.insert(cid, None);
            }
            for (cid, bytes) in commit.data.new_blocks.iter() {
                blocks.insert(cid, Some((bytes, rev)));
            }
        }
        // Per record, and per record its blob references.
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

        let references: Vec<(&str, String)> = references
            .into_iter()
            .filter(|(uri, _)| records.get(uri).is_some_and(Option::is_some))
            .flat_map(|(uri, cids)| cids.into_iter().map(move |cid| (uri, cid)))
            .collect();
        let claimed: BTreeSet<&String> = references.iter().map(|(_, cid)| cid).collect();
        let claimed = claimed.into_iter().cloned().collect();
        let (present, gone): (Vec<_>, Vec<_>) = blocks.into_iter().partition(|(_, entry)| entry.is_some());
        let (kept, deleted): (Vec<_>, Vec<_>) = records.into_iter().partition(|(_, entry)| entry.is_some());
        Some(NetEffect {
            blocks: present
                .into_iter()
                .filter_map(|(cid, entry)| entry.map(|(bytes, rev)| (cid, bytes, rev)))
                .collect(),
            gone: gone.into_iter().map(|(cid, _)| cid.to_string()).collect(),
            records: kept
                .into_iter()
                .filter_map(|(uri, entry)| entry.map(|entry| (uri, entry)))
                .map(|(uri, (collection, rkey, cid, rev))| RecordRow {
                    uri,
                    collection,
                    rkey,
                    cid: cid.to_string(),
                    rev,
                })
                .collect(),
            deleted: deleted.into_iter().map(|(uri, _)| uri).collect(),
            stored_before: stored_before.into_iter().collect(),
            references,
            claimed,
            released,
            base: first.base.to_string(),
            root: last.data.cid.to_string(),
            rev: last.data.commit.rev.as_str(),
            now: crate::account::now(),
            events,
        })
    }

    /// What is left to do once the batch is stored, given the blobs that may have lost their
    /// last reference and the last event's number.
    fn stored(self, released: BTreeSet<String>, last_seq: i64) -> Stored {
        // Only blobs no current record of this batch references may have become unreferenced.
        let kept: BTreeSet<&str> = self.claimed.iter().map(String::as_str).collect();
        let released = released.into_iter().filter(|cid| !kept.contains(cid.as_str())).collect();
        Stored { released, last_seq }
    }
}

/// The batch on SQLite's writer connection; the blobs that may have lost their last reference,
/// and the last event's number.
fn store_sqlite(
    txn: &rusqlite::Transaction<'_>,
    did: &str,
    effect: &mut NetEffect<'_>,
) -> Result<(BTreeSet<String>, i64), StoreError> {
    use rusqlite::params;

    let mut insert = txn.prepare_cached(
        "INSERT INTO repo_block (did, cid, rev, size, content) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
    )?;
    for (cid, bytes, rev) in &effect.blocks {
        insert.execute(params![did, cid.to_string(), rev, bytes.len() as i64, bytes.as_ref()])?;
    }
    let mut delete = txn.prepare_cached("DELETE FROM repo_block WHERE did = ?1 AND cid = ?2")?;
    for cid in &effect.gone {
        delete.execute(params![did, cid])?;
    }

    let mut upsert = txn.prepare_cached(
        "INSERT INTO record (uri, cid, did, collection, rkey, rev, indexed_at, takedown_ref) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL) \
         ON CONFLICT (uri) DO UPDATE SET cid = excluded.cid, rev = excluded.rev, indexed_at = excluded.indexed_at",
    )?;
    for row in &effect.records {
        upsert.execute(params![row.uri, row.cid, did, row.collection, row.rkey, row.rev, effect.now])?;
    }
    let mut delete = txn.prepare_cached("DELETE FROM record WHERE uri = ?1")?;
    for uri in &effect.deleted {
        delete.execute([uri])?;
    }

    // Blob references: records stored before this batch drop their old ones; every record
    // now written adds its current ones, and every referenced blob stops being temporary.
    let mut released = std::mem::take(&mut effect.released);
    let mut old = txn.prepare_cached("SELECT blob_cid FROM record_blob WHERE record_uri = ?1")?;
    let mut forget = txn.prepare_cached("DELETE FROM record_blob WHERE record_uri = ?1")?;
    for uri in &effect.stored_before {
        for cid in old.query_map([uri], |row| row.get::<_, String>(0))? {
            released.insert(cid?);
        }
        forget.execute([uri])?;
    }
    let mut refer = txn.prepare_cached(
        "INSERT INTO record_blob (blob_cid, record_uri, did) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
    )?;
    for (uri, cid) in &effect.references {
        refer.execute(params![cid, uri, did])?;
    }
    let mut claim = txn.prepare_cached("UPDATE blob SET temp_key = NULL WHERE did = ?1 AND cid = ?2")?;
    for cid in &effect.claimed {
        claim.execute(params![did, cid])?;
    }

    // The root moves only from the commit the batch was built on, and only while the account
    // is active: one statement checks both, so a writer never needs a separate read first.
    let moved = txn.prepare_cached(
        "UPDATE repo_root SET cid = ?1, rev = ?2, indexed_at = ?3 WHERE did = ?4 AND cid = ?5 AND EXISTS \
         (SELECT 1 FROM actor WHERE did = ?4 AND takedown_ref IS NULL AND deactivated_at IS NULL AND deleted_at IS NULL)",
    )?
    .execute(params![effect.root, effect.rev, aurora_atproto::syntax::Datetime::now().as_str(), did, effect.base])?;
    if moved != 1 {
        return Err(StoreError::Refused);
    }
    let last_seq = sequencer::append_all_sqlite(txn, std::mem::take(&mut effect.events))?;
    Ok((released, last_seq))
}

/// The batch through the connection pool, in multi-row statements; the blobs that may have
/// lost their last reference, and the last event's number.
async fn store_pooled(
    ctx: &AppContext,
    did: &str,
    effect: &mut NetEffect<'_>,
) -> Result<(BTreeSet<String>, i64), StoreError> {
    let txn = ctx.db.begin().await?;
    super::insert_blocks(&txn, did, effect.blocks.iter().copied()).await?;
    for chunk in effect.gone.chunks(IN_LIST) {
        repo_block::Entity::delete_many()
            .filter(repo_block::Column::Did.eq(did))
            .filter(repo_block::Column::Cid.is_in(chunk.iter().cloned()))
            .exec(&txn)
            .await?;
    }

    let indexed: Vec<record::ActiveModel> = effect
        .records
        .iter()
        .map(|row| record::ActiveModel {
            uri: Set(row.uri.to_owned()),
            cid: Set(row.cid.clone()),
            did: Set(did.to_owned()),
            collection: Set(row.collection.to_owned()),
            rkey: Set(row.rkey.to_owned()),
            rev: Set(row.rev.to_owned()),
            indexed_at: Set(effect.now.clone()),
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
    for chunk in effect.deleted.chunks(IN_LIST) {
        record::Entity::delete_many().filter(record::Column::Uri.is_in(chunk.iter().copied())).exec(&txn).await?;
    }

    let mut released = std::mem::take(&mut effect.released);
    released.extend(crate::blobs::refs::stored_for(&txn, &effect.stored_before).await?);
    for chunk in effect.stored_before.chunks(IN_LIST) {
        record_blob::Entity::delete_many()
            .filter(record_blob::Column::RecordUri.is_in(chunk.iter().copied()))
            .exec(&txn)
            .await?;
    }
    let referencing: Vec<record_blob::ActiveModel> = effect
        .references
        .iter()
        .map(|(uri, cid)| record_blob::ActiveModel {
            blob_cid: Set(cid.clone()),
            record_uri: Set((*uri).to_owned()),
            did: Set(did.to_owned()),
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
    for chunk in effect.claimed.chunks(IN_LIST) {
        blob::Entity::update_many()
            .col_expr(blob::Column::TempKey, Expr::value(Option::<String>::None))
            .filter(blob::Column::Did.eq(did))
            .filter(blob::Column::Cid.is_in(chunk.iter().cloned()))
            .exec(&txn)
            .await?;
    }

    let active = Query::select()
        .expr(Expr::val(1))
        .from(actor::Entity)
        .and_where(Expr::col((actor::Entity, actor::Column::Did)).eq(did))
        .and_where(Expr::col((actor::Entity, actor::Column::TakedownRef)).is_null())
        .and_where(Expr::col((actor::Entity, actor::Column::DeactivatedAt)).is_null())
        .and_where(Expr::col((actor::Entity, actor::Column::DeletedAt)).is_null())
        .to_owned();
    let moved = repo_root::Entity::update_many()
        .col_expr(repo_root::Column::Cid, Expr::value(effect.root.as_str()))
        .col_expr(repo_root::Column::Rev, Expr::value(effect.rev))
        .col_expr(repo_root::Column::IndexedAt, Expr::value(aurora_atproto::syntax::Datetime::now().as_str()))
        .filter(repo_root::Column::Did.eq(did))
        .filter(repo_root::Column::Cid.eq(effect.base.as_str()))
        .filter(Expr::exists(active))
        .exec(&txn)
        .await?;
    if moved.rows_affected != 1 {
        return Err(StoreError::Refused);
    }
    let events = std::mem::take(&mut effect.events);
    let count = events.len() as i64;
    let first_seq = sequencer::append_all(&txn, events).await?;
    txn.commit().await?;
    Ok((released, first_seq + count - 1))
}
