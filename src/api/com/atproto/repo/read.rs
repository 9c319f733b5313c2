//! Record reads: `getRecord`, `listRecords`, `describeRepo`, from the record index and the
//! repository's blocks.

use poem::http::StatusCode;
use sea_orm::sea_query::{Alias, Expr, Order, Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use aurora_generated::com::atproto::repo::{describe_repo as dsr, get_record as gr, list_records as lr};
use aurora_xrpc::codegen::AtIdentifier;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::{self, Lookup};
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::{actor, record, repo_block};
use crate::sequencer::AccountStatus;

fn repo_not_found(repo: &str) -> XrpcError {
    XrpcError::new(StatusCode::BAD_REQUEST, "RepoNotFound", Some(format!("Could not find repo: {repo}")))
}

/// The account whose repository `repo` names; served only while it is active.
async fn hosted(ctx: &AppContext, repo: &AtIdentifier) -> XrpcResult<actor::Model> {
    let identifier = repo.as_str().to_lowercase();
    let lookup = if identifier.starts_with("did:") { Lookup::Did(&identifier) } else { Lookup::Handle(&identifier) };
    match account::find_actor(&ctx.db, lookup).await.map_err(internal)? {
        Some(a) if account::actor_status(&a) == AccountStatus::Active => Ok(a),
        _ => Err(repo_not_found(repo.as_str())),
    }
}

/// A record's index row with its block, read together.
struct Stored {
    uri: String,
    cid: String,
    content: Option<Vec<u8>>,
}

/// Records of `did` with their blocks, in one query: `filter` narrows the index rows, and
/// taken-down records are never returned.
async fn stored(ctx: &AppContext, did: &str, narrow: impl FnOnce(&mut SelectStatement)) -> XrpcResult<Vec<Stored>> {
    let mut query = Query::select();
    query
        .column((record::Entity, record::Column::Uri))
        .column((record::Entity, record::Column::Cid))
        .column((repo_block::Entity, repo_block::Column::Content))
        .from(record::Entity)
        .left_join(
            repo_block::Entity,
            Expr::col((repo_block::Entity, repo_block::Column::Did)).equals((record::Entity, record::Column::Did)).and(
                Expr::col((repo_block::Entity, repo_block::Column::Cid)).equals((record::Entity, record::Column::Cid)),
            ),
        )
        .and_where(Expr::col((record::Entity, record::Column::Did)).eq(did))
        .and_where(Expr::col((record::Entity, record::Column::TakedownRef)).is_null());
    narrow(&mut query);
    let backend = ctx.db.get_database_backend();
    let rows = ctx.db.query_all(backend.build(&query)).await.map_err(internal)?;
    rows.into_iter()
        .map(|row| {
            Ok(Stored {
                uri: row.try_get("", "uri").map_err(internal)?,
                cid: row.try_get("", "cid").map_err(internal)?,
                content: row.try_get("", "content").map_err(internal)?,
            })
        })
        .collect()
}

fn value_of(did: &str, stored: &Stored) -> XrpcResult<serde_json::Value> {
    let bytes = stored
        .content
        .as_deref()
        .ok_or_else(|| XrpcError::internal(format!("record block {} of {did} is missing", stored.cid)))?;
    let ipld = aurora_atproto::data::from_dag_cbor(bytes).map_err(internal)?;
    aurora_atproto::data::ipld_to_json(&ipld).map_err(internal)
}

fn wire<T: serde::de::DeserializeOwned>(text: &str) -> XrpcResult<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(internal)
}

/// One round trip: the account, its record at the key and the record's block, joined.
pub async fn get_record(ctx: &AppContext, params: gr::Params) -> XrpcResult<gr::Output> {
    let identifier = params.repo.as_str().to_lowercase();
    let named = if identifier.starts_with("did:") {
        Expr::col((actor::Entity, actor::Column::Did)).eq(identifier.as_str())
    } else {
        Expr::col((actor::Entity, actor::Column::Handle)).eq(identifier.as_str())
    };
    let mut query = Query::select();
    query
        .column((actor::Entity, actor::Column::Did))
        .expr_as(Expr::col((actor::Entity, actor::Column::TakedownRef)), Alias::new("account_takedown"))
        .column((actor::Entity, actor::Column::DeactivatedAt))
        .column((record::Entity, record::Column::Cid))
        .expr_as(Expr::col((record::Entity, record::Column::TakedownRef)), Alias::new("record_takedown"))
        .column((repo_block::Entity, repo_block::Column::Content))
        .from(actor::Entity)
        .left_join(
            record::Entity,
            Expr::col((record::Entity, record::Column::Did))
                .equals((actor::Entity, actor::Column::Did))
                .and(Expr::col((record::Entity, record::Column::Collection)).eq(params.collection.as_str()))
                .and(Expr::col((record::Entity, record::Column::Rkey)).eq(params.rkey.as_str())),
        )
        .left_join(
            repo_block::Entity,
            Expr::col((repo_block::Entity, repo_block::Column::Did)).equals((record::Entity, record::Column::Did)).and(
                Expr::col((repo_block::Entity, repo_block::Column::Cid)).equals((record::Entity, record::Column::Cid)),
            ),
        )
        .and_where(Expr::col((actor::Entity, actor::Column::DeletedAt)).is_null())
        .and_where(named);
    let backend = ctx.db.get_database_backend();
    let row = ctx.db.query_one(backend.build(&query)).await.map_err(internal)?;
    let Some(row) = row else { return Err(repo_not_found(params.repo.as_str())) };
    let text = |column: &str| row.try_get::<Option<String>>("", column).map_err(internal);
    let did: String = row.try_get("", "did").map_err(internal)?;
    if text("account_takedown")?.is_some() || text("deactivated_at")?.is_some() {
        return Err(repo_not_found(params.repo.as_str()));
    }
    let uri = format!("at://{did}/{}/{}", params.collection, params.rkey);
    let found = match (text("cid")?, text("record_takedown")?) {
        (Some(cid), None) if params.cid.as_ref().is_none_or(|c| c.as_str() == cid) => {
            Some(Stored { uri: uri.clone(), cid, content: row.try_get("", "content").map_err(internal)? })
        }
        _ => None,
    };
    let row = found.ok_or_else(|| {
        XrpcError::new(StatusCode::NOT_FOUND, "RecordNotFound", Some(format!("Could not locate record: {uri}")))
    })?;
    Ok(gr::Output {
        value: value_of(&did, &row)?,
        uri: wire(&uri)?,
        cid: Some(wire(&row.cid)?),
        extra: Default::default(),
    })
}

pub async fn list_records(ctx: &AppContext, params: lr::Params) -> XrpcResult<lr::Output> {
    let actor = hosted(ctx, &params.repo).await?;
    let reverse = params.reverse.unwrap_or(false);
    let limit = params.limit.clamp(1, 100) as u64;
    let rkey = || Expr::col((record::Entity, record::Column::Rkey));
    // Newest first by default: record keys are TIDs, which sort by time.
    let rows = stored(ctx, &actor.did, |q| {
        q.and_where(Expr::col((record::Entity, record::Column::Collection)).eq(params.collection.as_str()));
        if let Some(cursor) = &params.cursor {
            q.and_where(if reverse { rkey().gt(cursor.as_str()) } else { rkey().lt(cursor.as_str()) });
        }
        q.order_by((record::Entity, record::Column::Rkey), if reverse { Order::Asc } else { Order::Desc }).limit(limit);
    })
    .await?;
    let cursor = (rows.len() as u64 == limit)
        .then(|| rows.last().and_then(|r| r.uri.rsplit('/').next().map(str::to_owned)))
        .flatten();
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows {
        records.push(lr::Record {
            value: value_of(&actor.did, row)?,
            uri: wire(&row.uri)?,
            cid: wire(&row.cid)?,
            extra: Default::default(),
        });
    }
    Ok(lr::Output { records, cursor, extra: Default::default() })
}

pub async fn describe_repo(ctx: &AppContext, params: dsr::Params) -> XrpcResult<dsr::Output> {
    let actor = hosted(ctx, &params.repo).await?;
    let collections: Vec<String> = record::Entity::find()
        .select_only()
        .column(record::Column::Collection)
        .distinct()
        .filter(record::Column::Did.eq(actor.did.as_str()))
        .order_by_asc(record::Column::Collection)
        .into_tuple()
        .all(&ctx.db)
        .await
        .map_err(internal)?;
    let did_doc = ctx.resolver.did_doc(&actor.did, false).await.map_err(internal)?;
    let handle = actor.handle.as_deref().unwrap_or("handle.invalid");
    let handle_is_correct = crate::identity::atproto_handle(&did_doc).as_deref() == Some(handle);
    Ok(dsr::Output {
        handle: wire(handle)?,
        did: wire(&actor.did)?,
        did_doc,
        collections: collections.iter().map(|c| wire(c)).collect::<XrpcResult<_>>()?,
        handle_is_correct,
        extra: Default::default(),
    })
}
