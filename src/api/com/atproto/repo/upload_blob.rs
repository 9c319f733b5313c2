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

use crate::account;
use crate::api::internal;
use crate::blobs::{self, uploads, BlobError, BlobStore};
use crate::context::AppContext;
use crate::db::entities::blob;

fn too_large(limit: u64) -> XrpcError {
    XrpcError::payload_too_large(format!("This file is too large. It is {limit} bytes at most."))
}

pub async fn handle(ctx: &AppContext, auth: Caller, input: RawBody) -> XrpcResult<Output> {
    let did = auth.did().clone();
    let limit = ctx.config.blob_upload_limit;
    // Held until the upload is stored (and counted in the database) or refused.
    let room = ctx.storage.hold_upload(&did, input.content_length.unwrap_or(limit));
    let uploader = uploads::uploader(&ctx.db, ctx.reader.as_deref(), &did).await.map_err(internal)?;
    // A deactivated account may upload: an account moving here brings its blobs before it is
    // activated. A taken-down one may not.
    account::status::writable(uploader.as_ref().map(|u| u.status), true)?;
    if input.content_length.is_some_and(|length| length > limit) {
        return Err(too_large(limit));
    }
    room.admit(&ctx.storage, uploader.map_or(0, |u| u.temporary_bytes))?;
    let temp = ctx.blobs.put_temp(input.body.into_bytes_stream().boxed(), limit).await.map_err(|e| match e {
        BlobError::TooLarge(limit) => too_large(limit),
        BlobError::Read(reason) => XrpcError::invalid_request(format!("Could not read the upload: {reason}")),
        other => internal(other),
    })?;
    let mime = blobs::sniff_mime(&temp.head, &input.content_type);
    let dims = mime.starts_with("image/").then(|| blobs::image_dimensions(&temp.head)).flatten();
    let cid = CidString::from(&temp.cid);
    let row = uploads::row(&ctx.db, ctx.reader.as_deref(), &did, &cid).await.map_err(internal)?;
    let this_blob =
        || blob::Entity::update_many().filter(blob::Column::Did.eq(&did)).filter(blob::Column::Cid.eq(&cid));
    // The key the blob waits under for a record, if it is not stored for good.
    let waiting = match row {
        // The same bytes are already stored for this account.
        Some(None) => {
            ctx.blobs.delete_temp(&temp.key).await.map_err(internal)?;
            None
        }
        Some(Some(old)) => {
            let _ = ctx.blobs.delete_temp(&old).await;
            this_blob()
                .col_expr(blob::Column::TempKey, Expr::value(Some(temp.key.clone())))
                .col_expr(blob::Column::CreatedAt, Expr::value(crate::account::now()))
                .exec(&ctx.db)
                .await
                .map_err(internal)?;
            Some(temp.key)
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
            Some(temp.key)
        }
    };
    // After an import, records may already reference this blob: it is permanent at once.
    // Asked once the row is written, so an import whose commit lands before then is seen.
    let referenced = match &waiting {
        Some(_) => uploads::referenced(&ctx.db, ctx.reader.as_deref(), &did, &cid).await.map_err(internal)?,
        None => false,
    };
    if let Some(key) = waiting.filter(|_| referenced) {
        ctx.blobs.make_permanent(&key, &did, &temp.cid).await.map_err(internal)?;
        this_blob()
            .col_expr(blob::Column::TempKey, Expr::value(Option::<String>::None))
            .exec(&ctx.db)
            .await
            .map_err(internal)?;
    }
    drop(room);
    Ok(Output { blob: BlobRef { cid: temp.cid, mime_type: mime, size: Some(temp.size) }, extra: Default::default() })
}
