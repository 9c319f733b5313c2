//! `com.atproto.server.createInviteCode`: one invite code, made by the administrator.

use aurora_generated::com::atproto::server::create_invite_code::{Input, Output};
use aurora_xrpc::auth::Admin;
use aurora_xrpc::{XrpcError, XrpcResult};
use sea_orm::TransactionTrait;

use crate::account::invites;
use crate::admin::audit::Entry;
use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, auth: Admin, input: Input) -> XrpcResult<Output> {
    let code = invites::new_code(&ctx.config.hostname);
    let for_account = input.for_account.map_or_else(|| "admin".to_owned(), |d| d.as_str().to_owned());
    let uses = use_count(input.use_count)?;
    let txn = ctx.db.begin().await.map_err(internal)?;
    invites::create(&txn, &code, uses, &for_account, "admin").await.map_err(internal)?;
    let detail = serde_json::json!({ "codes": [&code], "forAccount": for_account, "useCount": uses });
    Entry::by(&auth, "createInviteCode").detail(detail).write(&txn).await.map_err(internal)?;
    txn.commit().await.map_err(internal)?;
    Ok(Output { code, extra: Default::default() })
}

/// A code's number of uses: at least one, and at most what the column holds.
pub(super) fn use_count(count: i64) -> XrpcResult<i32> {
    match i32::try_from(count) {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err(XrpcError::invalid_request("useCount must be at least 1")),
        Err(_) => Err(XrpcError::invalid_request(format!("useCount must be at most {}", i32::MAX))),
    }
}
