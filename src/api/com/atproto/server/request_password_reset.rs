//! `com.atproto.server.requestPasswordReset`: mails a reset code to the address, if an account
//! has it; unknown addresses get the same answer, so the method does not reveal who has one.

use poem::http::StatusCode;

use aurora_generated::com::atproto::server::request_password_reset::Input;
use aurora_xrpc::XrpcResult;

use crate::account::{self, Lookup};
use crate::api::codes;
use crate::api::internal;
use crate::context::AppContext;
use crate::mail::Purpose;

pub async fn handle(ctx: &AppContext, input: Input) -> XrpcResult<()> {
    let address = input.email.trim().to_lowercase();
    let found = account::find(&ctx.db, Lookup::Email(&address)).await.map_err(internal)?;
    let Some(found) = found else { return Ok(()) };
    match codes::send_code(ctx, found.did(), Purpose::ResetPassword).await {
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => Err(e),
        other => other,
    }
}
