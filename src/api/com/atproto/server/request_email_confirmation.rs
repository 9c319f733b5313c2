//! `com.atproto.server.requestEmailConfirmation`: mails a code that confirms the address.

use aurora_xrpc::auth::Access;
use aurora_xrpc::XrpcResult;

use crate::api::codes;
use crate::context::AppContext;
use crate::mail::Purpose;

pub async fn handle(ctx: &AppContext, auth: Access) -> XrpcResult<()> {
    codes::send_code(ctx, &auth.did, Purpose::ConfirmEmail).await
}
