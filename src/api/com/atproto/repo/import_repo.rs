//! `com.atproto.repo.importRepo`: replaces the caller's repository with a CAR it uploads (an
//! account moving here brings its repository this way).

use futures_util::TryStreamExt;

use aurora_xrpc::auth::Access;
use aurora_xrpc::{RawBody, XrpcError, XrpcResult};

use crate::context::AppContext;
use crate::repo::import::{import, ImportError};

pub async fn handle(ctx: &AppContext, auth: Access, input: RawBody) -> XrpcResult<()> {
    let did = &auth.did;
    // A token outlives a takedown by up to its lifetime; the account's status is checked
    // here, and again where the import is stored. A deactivated account may import: moving
    // here, it imports before it is activated.
    crate::account::status::require_writable(ctx, did, true).await?;
    if !ctx.config.accepting_repo_imports {
        return Err(XrpcError::invalid_request("Service is not accepting repo imports"));
    }
    if input.content_length.is_some_and(|length| length > ctx.config.max_repo_import_size) {
        return Err(XrpcError::payload_too_large("Repository is too large to import"));
    }
    // One staged import per account, and only while the disk has room for it.
    let _staging = ctx.storage.start_import(did, input.content_length.unwrap_or(ctx.config.max_repo_import_size))?;
    let reader = tokio_util::io::StreamReader::new(input.body.into_bytes_stream().map_err(std::io::Error::other));
    let records = import(ctx, did, reader).await.map_err(|e| match e {
        ImportError::InvalidCar(_) | ImportError::DoesNotVerify(_) => XrpcError::invalid_request(e.to_string()),
        ImportError::Refused(refusal) => refusal.into(),
        ImportError::Internal(cause) => XrpcError::internal(cause),
    })?;
    tracing::info!(%did, records, "repository imported");
    Ok(())
}
