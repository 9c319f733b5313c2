//! `com.atproto.server.revokeAppPassword`: removes an app password and ends its sessions.

use aurora_generated::com::atproto::server::revoke_app_password::Input;
use aurora_xrpc::auth::Access;
use aurora_xrpc::XrpcResult;

use crate::account;
use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, auth: Access, input: Input) -> XrpcResult<()> {
    account::revoke_app_password(&ctx.db, &auth.did, &input.name).await.map_err(internal)?;
    // Its access tokens stop now, not when they expire.
    ctx.gate.forget(&auth.did);
    Ok(())
}
