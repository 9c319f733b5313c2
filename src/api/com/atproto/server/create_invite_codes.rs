//! `com.atproto.server.createInviteCodes`: codes in bulk, for accounts or for the
//! administrator.

use aurora_generated::com::atproto::server::create_invite_codes::{AccountCodes, Input, Output};
use aurora_xrpc::auth::Admin;
use aurora_xrpc::{XrpcError, XrpcResult};
use sea_orm::TransactionTrait;

use super::create_invite_code::use_count;
use crate::account::invites;
use crate::admin::audit::Entry;
use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, auth: Admin, input: Input) -> XrpcResult<Output> {
    let use_count = use_count(input.use_count)?;
    // Zero codes is an empty answer, as the reference gives; more than a thousand at once is
    // refused (the reference has no bound).
    if !(0..=1000).contains(&input.code_count) {
        return Err(XrpcError::invalid_request("codeCount must be between 0 and 1000"));
    }
    let accounts: Vec<String> = match input.for_accounts {
        Some(dids) if !dids.is_empty() => dids.iter().map(|d| d.as_str().to_owned()).collect(),
        _ => vec!["admin".to_owned()],
    };
    let mut codes = Vec::new();
    let txn = ctx.db.begin().await.map_err(internal)?;
    for account in accounts {
        let mut these = Vec::new();
        for _ in 0..input.code_count {
            let code = invites::new_code(&ctx.config.hostname);
            invites::create(&txn, &code, use_count, &account, "admin").await.map_err(internal)?;
            these.push(code);
        }
        codes.push(AccountCodes { account, codes: these, extra: Default::default() });
    }
    let detail = serde_json::json!({ "codes": &codes, "useCount": use_count });
    Entry::by(&auth, "createInviteCodes").detail(detail).write(&txn).await.map_err(internal)?;
    txn.commit().await.map_err(internal)?;
    Ok(Output { codes, extra: Default::default() })
}
