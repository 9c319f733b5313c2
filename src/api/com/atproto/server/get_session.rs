//! `com.atproto.server.getSession`: who the session belongs to, and the account's state.

use aurora_atproto::permission::{AccountAttr, Need};
use aurora_generated::com::atproto::server::get_session::Output;
use aurora_xrpc::auth::Access;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account;
use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, auth: Access) -> XrpcResult<Output> {
    let found = account::find_by_did(&ctx.db, ctx.reader.as_deref(), &auth.did).await.map_err(internal)?;
    let Some(found) = found.filter(|a| !a.status().is_taken_down()) else {
        return Err(XrpcError::invalid_request(format!("Could not find user info for account: {}", auth.did)));
    };
    let mut output = session_output!(Output, &found);
    // An app sees the email address only if it was granted reading it.
    if !auth.allows(&Need::Account { attr: AccountAttr::Email, manage: false }) {
        output.email = None;
        output.email_confirmed = None;
        output.email_auth_factor = None;
    }
    Ok(output)
}
