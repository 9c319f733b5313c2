//! `com.atproto.server.deleteSession`: signs out, revoking the refresh token (expired or not).

use aurora_xrpc::auth::Refresh;
use aurora_xrpc::XrpcResult;

use crate::account;
use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, auth: Refresh) -> XrpcResult<()> {
    account::delete_refresh_token(&ctx.db, &auth.token_id).await.map_err(internal)
}
