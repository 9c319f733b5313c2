//! `com.atproto.identity.requestPlcOperationSignature`: mails the code signPlcOperation asks
//! for, so a stolen session alone cannot move the identity away.

use aurora_xrpc::auth::Access;
use aurora_xrpc::XrpcResult;

use crate::api::codes;
use crate::context::AppContext;
use crate::mail::Purpose;

pub async fn handle(ctx: &AppContext, auth: Access) -> XrpcResult<()> {
    codes::send_code(ctx, &auth.did, Purpose::PlcOperation).await
}
