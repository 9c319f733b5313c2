//! `com.atproto.admin.enableAccountInvites`: the account may make invite codes again.

use aurora_generated::com::atproto::admin::enable_account_invites::Input;
use aurora_xrpc::auth::Admin;
use aurora_xrpc::XrpcResult;

use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, auth: Admin, input: Input) -> XrpcResult<()> {
    super::set_invites_disabled(ctx, &auth, &input.account, false, input.note.as_deref()).await
}
