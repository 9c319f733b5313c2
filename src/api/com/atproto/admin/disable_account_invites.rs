//! `com.atproto.admin.disableAccountInvites`: the account may no longer make invite codes.

use aurora_generated::com::atproto::admin::disable_account_invites::Input;
use aurora_xrpc::auth::Admin;
use aurora_xrpc::XrpcResult;

use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, auth: Admin, input: Input) -> XrpcResult<()> {
    super::set_invites_disabled(ctx, &auth, &input.account, true, input.note.as_deref()).await
}
