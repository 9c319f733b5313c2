//! Lexicon resolution (the atproto lexicon spec): an NSID's authority publishes the DID of the
//! repository holding its schemas in DNS (`_lexicon.<authority>`), and the schema is that
//! repository's `com.atproto.lexicon.schema` record named by the NSID, fetched with the proof
//! that it is in the signed repository. Results are cached; the last good copy stands in while
//! a refresh fails.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;

use aurora_atproto::blockstore::{BlockStore, MemoryBlockStore};
use aurora_atproto::car::{read_car, CarLimits};
use aurora_atproto::commit::Commit;
use aurora_atproto::mst::{Mst, MstKey};
use aurora_atproto::syntax::{Did, Nsid};

use crate::context::AppContext;
use crate::db::entities::lexicon_cache;

/// How long a resolved lexicon is used before it is resolved again.
const FRESH_SECS: i64 = 300;
pub const SCHEMA_COLLECTION: &str = "com.atproto.lexicon.schema";
const MAX_RECORD_CAR_BYTES: usize = 1024 * 1024;

/// A resolved lexicon: its schema record, where it lives and its CID.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub uri: String,
    pub cid: String,
    pub document: Value,
}

/// The lexicon `nsid` names: from the cache while fresh, else resolved again (the last good
/// copy is kept when that fails); `None` when it never resolved.
pub async fn resolve(ctx: &AppContext, nsid: &Nsid) -> Option<Resolved> {
    let now = crate::oauth::now();
    let cached = lexicon_cache::Entity::find_by_id(nsid.clone()).one(&ctx.db).await.ok().flatten();
    if let Some(row) = cached.as_ref().filter(|r| now - r.updated_at < FRESH_SECS) {
        return from_row(row);
    }
    let fetched = fetch(ctx, nsid).await;
    let row = match (&fetched, &cached) {
        (Some(found), _) => lexicon_cache::Model {
            nsid: nsid.clone(),
            lexicon: Some(found.document.to_string()),
            uri: Some(found.uri.clone()),
            cid: Some(found.cid.clone()),
            updated_at: now,
            last_succeeded_at: Some(now),
        },
        (None, Some(old)) => lexicon_cache::Model { updated_at: now, ..old.clone() },
        (None, None) => lexicon_cache::Model {
            nsid: nsid.clone(),
            lexicon: None,
            uri: None,
            cid: None,
            updated_at: now,
            last_succeeded_at: None,
        },
    };
    let active: lexicon_cache::ActiveModel = row.clone().into();
    let upsert = lexicon_cache::Entity::insert(active).on_conflict(
        OnConflict::column(lexicon_cache::Column::Nsid)
            .update_columns([
                lexicon_cache::Column::Lexicon,
                lexicon_cache::Column::Uri,
                lexicon_cache::Column::Cid,
                lexicon_cache::Column::UpdatedAt,
                lexicon_cache::Column::LastSucceededAt,
            ])
            .to_owned(),
    );
    if let Err(e) = upsert.exec_without_returning(&ctx.db).await {
        tracing::warn!(%nsid, error = %e, "could not cache a lexicon");
    }
    // Negative entries are only worth keeping while fresh.
    let _ = lexicon_cache::Entity::delete_many()
        .filter(lexicon_cache::Column::Lexicon.is_null())
        .filter(lexicon_cache::Column::UpdatedAt.lt(now - FRESH_SECS))
        .exec(&ctx.db)
        .await;
    from_row(&row)
}

fn from_row(row: &lexicon_cache::Model) -> Option<Resolved> {
    Some(Resolved {
        uri: row.uri.clone()?,
        cid: row.cid.clone()?,
        document: serde_json::from_str(row.lexicon.as_deref()?).ok()?,
    })
}

/// The schema record, fetched from the authority's repository (or read here when the
/// authority is an account of this server); `None` when anything fails.
async fn fetch(ctx: &AppContext, nsid: &Nsid) -> Option<Resolved> {
    let did = ctx.resolver.did_in_txt(&format!("_lexicon.{}.", nsid.authority_domain())).await?;
    let uri = format!("at://{did}/{SCHEMA_COLLECTION}/{nsid}");
    let (document, cid) = match local_record(ctx, &did, nsid).await {
        Some(found) => found?,
        None => remote_record(ctx, &did, nsid).await?,
    };
    if document["$type"] != SCHEMA_COLLECTION || document["id"] != nsid.as_str() {
        return None;
    }
    Some(Resolved { uri, cid, document })
}

/// The record from this server's own store, when `did` is an active account here: `Some(None)`
/// when its record is missing or taken down.
async fn local_record(ctx: &AppContext, did: &Did, nsid: &Nsid) -> Option<Option<(Value, String)>> {
    use crate::repo::records::{find, Lookup};
    let collection: Nsid = SCHEMA_COLLECTION.parse().ok()?;
    let rkey = nsid.as_str().parse().ok()?;
    let identifier = aurora_atproto::syntax::AtIdentifier::Did(did.clone());
    match find(&ctx.db, ctx.reader.as_deref(), &identifier, &collection, &rkey).await.ok()? {
        // Not hosted here, or not active here: ask the network.
        Lookup::NoRepo | Lookup::Unavailable => None,
        Lookup::Found { record, .. } => Some(record.and_then(|r| Some((r.value().ok()?, r.cid.as_str().to_owned())))),
    }
}

/// The record from the authority's PDS, with the commit and tree path that prove it.
async fn remote_record(ctx: &AppContext, did: &Did, nsid: &Nsid) -> Option<(Value, String)> {
    let doc = ctx.resolver.did_doc(did, false).await.ok()?;
    let endpoint = crate::identity::pds_endpoint(did.as_str(), &doc)?;
    let key = crate::identity::atproto_key(did.as_str(), &doc)?;
    let url = format!(
        "{}/xrpc/com.atproto.sync.getRecord?did={did}&collection={SCHEMA_COLLECTION}&rkey={nsid}",
        endpoint.trim_end_matches('/')
    );
    let fetched = ctx.guard.fetch(&url, MAX_RECORD_CAR_BYTES).await.ok()?;
    if fetched.status != 200 {
        return None;
    }
    let (root, blocks) = read_car(&fetched.body[..], CarLimits::default()).await.ok()?;
    let store = MemoryBlockStore::from_blocks(blocks);
    let commit = Commit::from_bytes(&store.get(&root).await.ok()??).ok()?;
    commit.check_did(did).ok()?;
    commit.verify(&key).ok()?;
    let path = MstKey::new(SCHEMA_COLLECTION, nsid.as_str()).ok()?;
    let cid = Mst::load(commit.data).get(&store, &path).await.ok()??;
    let bytes = store.get(&cid).await.ok()??;
    let ipld = aurora_atproto::data::from_dag_cbor(&bytes).ok()?;
    Some((aurora_atproto::data::ipld_to_json(&ipld).ok()?, cid.to_string()))
}
