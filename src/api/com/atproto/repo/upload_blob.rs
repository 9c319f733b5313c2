//! `com.atproto.repo.uploadBlob`: the first phase of a blob's life. The upload is kept as
//! temporary until a record references it (see the repository writer). A service acting for
//! the account (a video service, say) may upload with a service-auth token.

use futures_util::StreamExt;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};

use aurora_atproto::syntax::CidString;
use aurora_generated::com::atproto::repo::upload_blob::Output;
use aurora_xrpc::auth::Caller;
use aurora_xrpc::codegen::BlobRef;
use aurora_xrpc::{RawBody, XrpcError, XrpcResult};

use crate::api::internal;
use crate::blobs::{self, BlobError, BlobStore};
use crate::context::AppContext;
use crate::db::entities::{blob, record_blob};

fn too_large(limit: u64) -> XrpcError {
    XrpcError::payload_too_large(format!("This file is too large. It is {limit} bytes at most."))
}

pub async fn handle(ctx: &AppContext, auth: Caller, input: RawBody) -> XrpcResult<Output> {
    let did = auth.did().clone();
    // A deactivated account may upload: an account moving here brings its blobs before it is
    // activated. A taken-down one may not.
    crate::account::status::require_writable(ctx, &did, true).await?;
    let limit = ctx.config.blob_upload_limit;
    if input.content_length.is_some_and(|length| length > limit) {
        return Err(too_large(limit));
    }
    // Held until the upload is stored (and counted in the database) or refused.
    let _room = ctx.storage.reserve_upload(&ctx.db, &did, input.content_length.unwrap_or(limit)).await?;
    let temp = ctx.blobs.put_temp(input.body.into_bytes_stream().boxed(), limit).await.map_err(|e| match e {
        BlobError::TooLarge(limit) => too_large(limit),
        BlobError::Read(reason) => XrpcError::invalid_request(format!("Could not read the upload: {reason}")),
        other => internal(other),
    })?;
    let mime = blobs::sniff_mime(&temp.head, &input.content_type);
    let dims = mime.starts_with("image/").then(|| blobs::image_dimensions(&temp.head)).flatten();
    let cid = CidString::from(&temp.cid);
    let this_blob = || blob::Entity::find().filter(blob::Column::Did.eq(&did)).filter(blob::Column::Cid.eq(&cid));
    let existing = this_blob().one(&ctx.db).await.map_err(internal)?;
    match existing {
        // The same bytes are already stored for this account.
        Some(row) if row.temp_key.is_none() => ctx.blobs.delete_temp(&temp.key).await.map_err(internal)?,
        Some(row) => {
            if let Some(old) = &row.temp_key {
                let _ = ctx.blobs.delete_temp(old).await;
            }
            blob::Entity::update_many()
                .col_expr(blob::Column::TempKey, Expr::value(Some(temp.key.clone())))
                .col_expr(blob::Column::CreatedAt, Expr::value(crate::account::now()))
                .filter(blob::Column::Did.eq(&did))
                .filter(blob::Column::Cid.eq(&cid))
                .exec(&ctx.db)
                .await
                .map_err(internal)?;
        }
        None => {
            blob::Entity::insert(blob::ActiveModel {
                did: Set(did.clone()),
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
    let referenced = record_blob::Entity::find()
        .filter(record_blob::Column::Did.eq(&did))
        .filter(record_blob::Column::BlobCid.eq(&cid))
        .one(&ctx.db)
        .await
        .map_err(internal)?
        .is_some();
    if referenced {
        let row = this_blob().one(&ctx.db).await.map_err(internal)?;
        if let Some(key) = row.and_then(|r| r.temp_key) {
            ctx.blobs.make_permanent(&key, &did, &temp.cid).await.map_err(internal)?;
            blob::Entity::update_many()
                .col_expr(blob::Column::TempKey, Expr::value(Option::<String>::None))
                .filter(blob::Column::Did.eq(&did))
                .filter(blob::Column::Cid.eq(&cid))
                .exec(&ctx.db)
                .await
                .map_err(internal)?;
        }
    }
    Ok(Output { blob: BlobRef { cid: temp.cid, mime_type: mime, size: Some(temp.size) }, extra: Default::default() })
}
