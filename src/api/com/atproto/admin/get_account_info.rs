//! `com.atproto.admin.getAccountInfo`: one account as an operator sees it, taken down or
//! deactivated included.

use poem::http::StatusCode;

use aurora_generated::com::atproto::admin::defs::AccountView;
use aurora_generated::com::atproto::admin::get_account_info::Params;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::admin::accounts;
use crate::api::{internal, views};
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<AccountView> {
    let found = accounts::infos(&ctx.db, std::slice::from_ref(&params.did)).await.map_err(internal)?;
    let info = found
        .into_iter()
        .next()
        .ok_or_else(|| XrpcError::new(StatusCode::BAD_REQUEST, "NotFound", Some("Account not found".into())))?;
    views::account_view(info)
}
