//! Record reads: `getRecord`, `listRecords`, `describeRepo`, from the record index and the
//! repository's blocks.

use poem::http::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use aurora_atproto::blockstore::BlockStore;
use aurora_generated::com::atproto::repo::{describe_repo as dsr, get_record as gr, list_records as lr};
use aurora_xrpc::codegen::AtIdentifier;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::{self, Account};
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::record;
use crate::repo::SqlBlockStore;
use crate::sequencer::AccountStatus;

fn repo_not_found(repo: &str) -> XrpcError {
    XrpcError::new(StatusCode::BAD_REQUEST, "RepoNotFound", Some(format!("Could not find repo: {repo}")))
}

/// The account whose repository `repo` names; served only while it is active.
async fn hosted(ctx: &AppContext, repo: &AtIdentifier) -> XrpcResult<Account> {
    let found = account::find_by_identifier(&ctx.db, &repo.as_str().to_lowercase()).await.map_err(internal)?;
    match found {
        Some(a) if a.status() == AccountStatus::Active => Ok(a),
        _ => Err(repo_not_found(repo.as_str())),
    }
}

async fn value_of(ctx: &AppContext, did: &str, cid: &str) -> XrpcResult<serde_json::Value> {
    let cid: cid::Cid = cid.parse().map_err(internal)?;
    let bytes = SqlBlockStore::new(&ctx.db, did)
        .get(&cid)
        .await
        .map_err(internal)?
        .ok_or_else(|| XrpcError::internal(format!("record block {cid} of {did} is missing")))?;
    let ipld = aurora_atproto::data::from_dag_cbor(&bytes).map_err(internal)?;
    aurora_atproto::data::ipld_to_json(&ipld).map_err(internal)
}

fn wire<T: serde::de::DeserializeOwned>(text: &str) -> XrpcResult<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(internal)
}

pub async fn get_record(ctx: &AppContext, params: gr::Params) -> XrpcResult<gr::Output> {
    let account = hosted(ctx, &params.repo).await?;
    let uri = format!("at://{}/{}/{}", account.did(), params.collection, params.rkey);
    let row = record::Entity::find_by_id(uri.clone()).one(&ctx.db).await.map_err(internal)?;
    let row = row
        .filter(|r| r.takedown_ref.is_none())
        .filter(|r| params.cid.as_ref().is_none_or(|c| c.as_str() == r.cid))
        .ok_or_else(|| {
            XrpcError::new(StatusCode::NOT_FOUND, "RecordNotFound", Some(format!("Could not locate record: {uri}")))
        })?;
    Ok(gr::Output {
        value: value_of(ctx, account.did(), &row.cid).await?,
        uri: wire(&uri)?,
        cid: Some(wire(&row.cid)?),
        extra: Default::default(),
    })
}

pub async fn list_records(ctx: &AppContext, params: lr::Params) -> XrpcResult<lr::Output> {
    let account = hosted(ctx, &params.repo).await?;
    let reverse = params.reverse.unwrap_or(false);
    let mut query = record::Entity::find()
        .filter(record::Column::Did.eq(account.did()))
        .filter(record::Column::Collection.eq(params.collection.as_str()))
        .filter(record::Column::TakedownRef.is_null());
    // Newest first by default: record keys are TIDs, which sort by time.
    if let Some(cursor) = &params.cursor {
        query = if reverse {
            query.filter(record::Column::Rkey.gt(cursor.as_str()))
        } else {
            query.filter(record::Column::Rkey.lt(cursor.as_str()))
        };
    }
    let query =
        if reverse { query.order_by_asc(record::Column::Rkey) } else { query.order_by_desc(record::Column::Rkey) };
    let limit = params.limit.clamp(1, 100) as u64;
    let rows = query.limit(limit).all(&ctx.db).await.map_err(internal)?;
    let cursor = (rows.len() as u64 == limit).then(|| rows.last().map(|r| r.rkey.clone())).flatten();
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        records.push(lr::Record {
            value: value_of(ctx, account.did(), &row.cid).await?,
            uri: wire(&row.uri)?,
            cid: wire(&row.cid)?,
            extra: Default::default(),
        });
    }
    Ok(lr::Output { records, cursor, extra: Default::default() })
}

pub async fn describe_repo(ctx: &AppContext, params: dsr::Params) -> XrpcResult<dsr::Output> {
    let account = hosted(ctx, &params.repo).await?;
    let collections: Vec<String> = record::Entity::find()
        .select_only()
        .column(record::Column::Collection)
        .distinct()
        .filter(record::Column::Did.eq(account.did()))
        .order_by_asc(record::Column::Collection)
        .into_tuple()
        .all(&ctx.db)
        .await
        .map_err(internal)?;
    let did_doc = ctx.resolver.did_doc(account.did(), false).await.map_err(internal)?;
    let handle_is_correct = crate::identity::atproto_handle(&did_doc).as_deref() == Some(account.handle());
    Ok(dsr::Output {
        handle: wire(account.handle())?,
        did: wire(account.did())?,
        did_doc,
        collections: collections.iter().map(|c| wire(c)).collect::<XrpcResult<_>>()?,
        handle_is_correct,
        extra: Default::default(),
    })
}
