//! `com.atproto.server.requestAccountDelete`: mails the code `deleteAccount` asks for.

use aurora_xrpc::auth::Access;
use aurora_xrpc::XrpcResult;

use crate::api::codes;
use crate::context::AppContext;
use crate::mail::Purpose;

pub async fn handle(ctx: &AppContext, auth: Access) -> XrpcResult<()> {
    codes::send_code(ctx, &auth.did, Purpose::DeleteAccount).await
}
