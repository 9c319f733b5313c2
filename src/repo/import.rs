//! `importRepo`: replaces an account's repository with one exported elsewhere (an account
//! moving here). The CAR is verified in full — every block hash, the MST, and the commit's
//! signature by the DID's key (or this account's own key, for a re-import) — then re-signed by
//! this server under a newer rev, and stored with its record index in one transaction.

use std::collections::BTreeSet;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use aurora_atproto::car::{read_car, verify_repo, CarLimits, VerifiedRepo};
use aurora_atproto::commit::{next_rev, UnsignedCommit};
use aurora_atproto::repo::CommitData;
use aurora_atproto::syntax::Did;
use aurora_xrpc::XrpcError;

use crate::api::internal;
use crate::blobs::refs;
use crate::context::AppContext;
use crate::db::entities::{record, record_blob, repo_block};
use crate::sequencer::{self, AccountStatus};

/// The largest repository accepted in one import.
pub const MAX_IMPORT_BYTES: usize = 512 * 1024 * 1024;

pub async fn import<R>(ctx: &AppContext, did: &str, reader: R) -> Result<usize, XrpcError>
where
    R: tokio::io::AsyncRead + Unpin + Send,
{
    let limits = CarLimits { max_total_size: MAX_IMPORT_BYTES as u64, ..CarLimits::default() };
    let (root, blocks) = read_car(reader, limits)
        .await
        .map_err(|e| XrpcError::invalid_request(format!("Invalid repository CAR: {e}")))?;
    let did_typed: Did = did.parse().map_err(internal)?;
    let own_key = crate::keys::signing_key(ctx, did).await?;
    let mut candidates = Vec::new();
    if let Ok(doc) = ctx.resolver.did_doc(did, true).await {
        candidates.extend(crate::identity::atproto_key(did, &doc));
    }
    candidates.push(own_key.public_key());
    let mut verified: Option<VerifiedRepo> = None;
    let mut last_error = String::new();
    for key in &candidates {
        match verify_repo(root, blocks.clone(), &did_typed, key).await {
            Ok(repo) => {
                verified = Some(repo);
                break;
            }
            Err(e) => last_error = e.to_string(),
        }
    }
    let repo =
        verified.ok_or_else(|| XrpcError::invalid_request(format!("Repository does not verify: {last_error}")))?;

    // The imported state, signed by this server's key for this account.
    let _guard = ctx.writers.exclusive(did).await;
    let current = super::root(&ctx.db, did).await.map_err(internal)?;
    let floor = match &current {
        Some(root) if root.rev.as_str() > repo.commit.rev.as_str() => root.rev.parse().ok(),
        _ => Some(repo.commit.rev.clone()),
    };
    let commit = UnsignedCommit::new(did_typed, repo.commit.data, next_rev(floor.as_ref())).sign(&own_key);
    let (commit_cid, commit_bytes) = commit.to_block();
    let mut new_blocks = repo.blocks.clone();
    new_blocks.remove(&repo.commit_cid);
    new_blocks.insert(commit_cid, commit_bytes);
    let data = CommitData {
        cid: commit_cid,
        commit: commit.clone(),
        since: None,
        prev_data: None,
        ops: Vec::new(),
        new_blocks,
        removed_blocks: Vec::new(),
        firehose_blocks: Default::default(),
    };
    let rev = commit.rev.as_str().to_owned();
    let now = crate::account::now();
    let txn = ctx.db.begin().await.map_err(internal)?;
    repo_block::Entity::delete_many().filter(repo_block::Column::Did.eq(did)).exec(&txn).await.map_err(internal)?;
    record::Entity::delete_many().filter(record::Column::Did.eq(did)).exec(&txn).await.map_err(internal)?;
    record_blob::Entity::delete_many().filter(record_blob::Column::Did.eq(did)).exec(&txn).await.map_err(internal)?;
    super::persist_commit(&txn, did, &data).await.map_err(internal)?;
    for (key, cid, bytes) in &repo.records {
        let uri = format!("at://{did}/{}/{}", key.collection(), key.rkey());
        let entry = super::IndexedRecord {
            did,
            uri: &uri,
            collection: key.collection(),
            rkey: key.rkey(),
            cid,
            rev: &rev,
            indexed_at: &now,
        };
        super::index_record(&txn, entry).await.map_err(internal)?;
        let value = aurora_atproto::data::from_dag_cbor(bytes)
            .and_then(|ipld| aurora_atproto::data::ipld_to_json(&ipld))
            .map_err(|e| XrpcError::invalid_request(format!("Record {uri} is not valid data: {e}")))?;
        let cids: BTreeSet<String> = refs::find(&value).into_iter().map(|r| r.cid.to_string()).collect();
        for blob_cid in cids {
            super::add_blob_reference(&txn, did, &uri, &blob_cid).await.map_err(internal)?;
        }
    }
    let active = crate::account::find(&txn, crate::account::Lookup::Did(did))
        .await
        .map_err(internal)?
        .is_some_and(|a| a.status() == AccountStatus::Active);
    if active {
        sequencer::sync(&txn, did, &commit).await.map_err(internal)?;
    }
    txn.commit().await.map_err(internal)?;
    ctx.firehose.poke();
    Ok(repo.records.len())
}
