//! `com.atproto.server.requestEmailUpdate`: a confirmed address must approve its replacement
//! with a mailed code; an unconfirmed one need not.

use aurora_generated::com::atproto::server::request_email_update::Output;
use aurora_xrpc::auth::Access;
use aurora_xrpc::XrpcResult;

use crate::api::codes;
use crate::context::AppContext;
use crate::mail::Purpose;

pub async fn handle(ctx: &AppContext, auth: Access) -> XrpcResult<Output> {
    let did = &auth.did;
    let (found, _) = codes::account_with_email(ctx, did).await?;
    let token_required = found.email_confirmed();
    if token_required {
        codes::send_code(ctx, did, Purpose::UpdateEmail).await?;
    }
    Ok(Output { token_required, extra: Default::default() })
}
