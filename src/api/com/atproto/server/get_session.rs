//! `com.atproto.server.getSession`: who the session belongs to, and the account's state.

use aurora_generated::com::atproto::server::get_session::Output;
use aurora_xrpc::auth::Access;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::{self, Lookup};
use crate::api::internal;
use crate::context::AppContext;
use crate::sequencer::AccountStatus;

pub async fn handle(ctx: &AppContext, auth: Access) -> XrpcResult<Output> {
    let found = account::find(&ctx.db, Lookup::Did(&auth.did)).await.map_err(internal)?;
    let Some(found) = found.filter(|a| a.status() != AccountStatus::Takendown) else {
        return Err(XrpcError::invalid_request(format!("Could not find user info for account: {}", auth.did)));
    };
    Ok(session_output!(Output, &found))
}
