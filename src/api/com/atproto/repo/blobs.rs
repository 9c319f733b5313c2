//! `com.atproto.repo.uploadBlob`: the first phase of a blob's life. The upload is kept as
//! temporary until a record references it (see the repository writer).

use poem::http::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};

use aurora_generated::com::atproto::repo::upload_blob::Output;
use aurora_xrpc::codegen::BlobRef;
use aurora_xrpc::{RawBody, RequestContext, XrpcError, XrpcResult};

use crate::api::internal;
use crate::blobs::{self, BlobError, BlobStore};
use crate::context::AppContext;
use crate::db::entities::blob;

fn too_large(limit: u64) -> XrpcError {
    XrpcError::new(
        StatusCode::BAD_REQUEST,
        "BlobTooLarge",
        Some(format!("This file is too large. It is {limit} bytes at most.")),
    )
}

pub async fn upload_blob(ctx: &AppContext, req: &RequestContext, input: RawBody) -> XrpcResult<Output> {
    let creds = ctx.verifier().standard(req)?;
    // A deactivated account may upload: an account moving here brings its blobs before it is
    // activated. A taken-down one may not.
    if let Err(e) = super::write::require_active(ctx, &creds.did).await {
        if e.error != "AccountDeactivated" {
            return Err(e);
        }
    }
    let limit = ctx.config.blob_upload_limit;
    if input.content_length.is_some_and(|length| length > limit) {
        return Err(too_large(limit));
    }
    let temp = ctx.blobs.put_temp(input.body, limit).await.map_err(|e| match e {
        BlobError::TooLarge(limit) => too_large(limit),
        BlobError::Read(reason) => XrpcError::invalid_request(format!("Could not read the upload: {reason}")),
        other => internal(other),
    })?;
    let mime = blobs::sniff_mime(&temp.head, &input.content_type);
    let dims = mime.starts_with("image/").then(|| blobs::image_dimensions(&temp.head)).flatten();
    let cid = temp.cid.to_string();
    let existing = blob::Entity::find()
        .filter(blob::Column::Did.eq(creds.did.as_str()))
        .filter(blob::Column::Cid.eq(cid.as_str()))
        .one(&ctx.db)
        .await
        .map_err(internal)?;
    match existing {
        // The same bytes are already stored for this account.
        Some(row) if row.temp_key.is_none() => ctx.blobs.delete_temp(&temp.key).await.map_err(internal)?,
        Some(row) => {
            if let Some(old) = &row.temp_key {
                let _ = ctx.blobs.delete_temp(old).await;
            }
            blob::Entity::update_many()
                .col_expr(blob::Column::TempKey, sea_orm::sea_query::Expr::value(Some(temp.key.clone())))
                .col_expr(blob::Column::CreatedAt, sea_orm::sea_query::Expr::value(crate::account::now()))
                .filter(blob::Column::Did.eq(creds.did.as_str()))
                .filter(blob::Column::Cid.eq(cid.as_str()))
                .exec(&ctx.db)
                .await
                .map_err(internal)?;
        }
        None => {
            blob::Entity::insert(blob::ActiveModel {
                did: Set(creds.did.clone()),
                cid: Set(cid.clone()),
                mime_type: Set(mime.clone()),
                size: Set(temp.size as i64),
                temp_key: Set(Some(temp.key.clone())),
                width: Set(dims.map(|d| d.0)),
                height: Set(dims.map(|d| d.1)),
                created_at: Set(crate::account::now()),
                takedown_ref: Set(None),
            })
            .exec_without_returning(&ctx.db)
            .await
            .map_err(internal)?;
        }
    }
    // After an import, records may already reference this blob: it is permanent at once.
    let referenced = crate::db::entities::record_blob::Entity::find()
        .filter(crate::db::entities::record_blob::Column::Did.eq(creds.did.as_str()))
        .filter(crate::db::entities::record_blob::Column::BlobCid.eq(cid.as_str()))
        .one(&ctx.db)
        .await
        .map_err(internal)?
        .is_some();
    if referenced {
        let row = blob::Entity::find()
            .filter(blob::Column::Did.eq(creds.did.as_str()))
            .filter(blob::Column::Cid.eq(cid.as_str()))
            .one(&ctx.db)
            .await
            .map_err(internal)?;
        if let Some(key) = row.and_then(|r| r.temp_key) {
            ctx.blobs.make_permanent(&key, &creds.did, &temp.cid).await.map_err(internal)?;
            blob::Entity::update_many()
                .col_expr(blob::Column::TempKey, sea_orm::sea_query::Expr::value(Option::<String>::None))
                .filter(blob::Column::Did.eq(creds.did.as_str()))
                .filter(blob::Column::Cid.eq(cid.as_str()))
                .exec(&ctx.db)
                .await
                .map_err(internal)?;
        }
    }
    Ok(Output { blob: BlobRef { cid: temp.cid, mime_type: mime, size: Some(temp.size) }, extra: Default::default() })
}

/// `com.atproto.repo.listMissingBlobs`: blobs that records reference but that were never
/// uploaded here (after an import), one entry per blob, by CID.
pub async fn list_missing(
    ctx: &AppContext,
    req: &RequestContext,
    params: aurora_generated::com::atproto::repo::list_missing_blobs::Params,
) -> XrpcResult<aurora_generated::com::atproto::repo::list_missing_blobs::Output> {
    use aurora_generated::com::atproto::repo::list_missing_blobs::{Output, RecordBlob};
    use sea_orm::{QueryOrder, QuerySelect};

    use crate::db::entities::record_blob;
    let creds = ctx.verifier().standard(req)?;
    let limit = params.limit.clamp(1, 1000) as usize;
    let mut query = record_blob::Entity::find().filter(record_blob::Column::Did.eq(creds.did.as_str()));
    if let Some(cursor) = &params.cursor {
        query = query.filter(record_blob::Column::BlobCid.gt(cursor.as_str()));
    }
    let mut blobs = Vec::new();
    let mut last = None;
    // Scan references in CID order, skipping those whose blob is present, until a page is full.
    let mut offset = 0;
    'scan: loop {
        let rows = query
            .clone()
            .order_by_asc(record_blob::Column::BlobCid)
            .offset(offset)
            .limit(500)
            .all(&ctx.db)
            .await
            .map_err(internal)?;
        if rows.is_empty() {
            break;
        }
        offset += rows.len() as u64;
        for row in rows {
            if last.as_deref() == Some(row.blob_cid.as_str()) {
                continue;
            }
            let present = blob::Entity::find()
                .filter(blob::Column::Did.eq(creds.did.as_str()))
                .filter(blob::Column::Cid.eq(row.blob_cid.as_str()))
                .one(&ctx.db)
                .await
                .map_err(internal)?
                .is_some();
            last = Some(row.blob_cid.clone());
            if !present {
                blobs.push(RecordBlob {
                    cid: row.blob_cid.parse().map_err(internal)?,
                    record_uri: row.record_uri.parse().map_err(internal)?,
                    extra: Default::default(),
                });
                if blobs.len() == limit {
                    break 'scan;
                }
            }
        }
    }
    let cursor = (blobs.len() == limit).then(|| blobs.last().map(|b| b.cid.as_str().to_owned())).flatten();
    Ok(Output { blobs, cursor, extra: Default::default() })
}

/// `com.atproto.repo.importRepo`.
pub async fn import_repo(ctx: &AppContext, req: &RequestContext, input: RawBody) -> XrpcResult<()> {
    use futures_util::TryStreamExt;
    let creds = ctx.verifier().full(req)?;
    // A token outlives a takedown by up to its lifetime; the account's status is checked
    // here, and again where the import is stored.
    let found = crate::account::find_actor(&ctx.db, crate::account::Lookup::Did(&creds.did)).await.map_err(internal)?;
    if let Some(refused) = super::write::refusal(found.as_ref().map(crate::account::actor_status), true) {
        return Err(refused);
    }
    if !ctx.config.accepting_repo_imports {
        return Err(XrpcError::invalid_request("Service is not accepting repo imports"));
    }
    if input.content_length.is_some_and(|length| length > ctx.config.max_repo_import_size) {
        return Err(XrpcError::payload_too_large("Repository is too large to import"));
    }
    let reader = tokio_util::io::StreamReader::new(input.body.into_bytes_stream().map_err(std::io::Error::other));
    let records = crate::repo::import::import(ctx, &creds.did, reader).await?;
    tracing::info!(did = %creds.did, records, "repository imported");
    Ok(())
}
