//! `com.atproto.server.getAccountInviteCodes`: the invite codes made for the account, with who
//! used them.

use aurora_generated::com::atproto::server::get_account_invite_codes::{Output, Params};
use aurora_xrpc::auth::Access;
use aurora_xrpc::XrpcResult;

use crate::account::invites;
use crate::api::{internal, views};
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, auth: Access, params: Params) -> XrpcResult<Output> {
    let mut codes = Vec::new();
    for (code, used) in invites::for_account(&ctx.db, auth.did.as_str()).await.map_err(internal)? {
        let fully_used = used.len() as i64 >= i64::from(code.available_uses);
        if code.disabled || (!params.include_used && fully_used) {
            continue;
        }
        codes.push(views::invite_code((code, used))?);
    }
    Ok(Output { codes, extra: Default::default() })
}
