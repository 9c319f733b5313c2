//! `com.atproto.admin.getAccountInfos`: several accounts at once; those not here are left out.

use aurora_generated::com::atproto::admin::get_account_infos::{Output, Params};
use aurora_xrpc::XrpcResult;

use crate::admin::accounts;
use crate::api::{internal, views};
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let found = accounts::infos(&ctx.db, &params.dids).await.map_err(internal)?;
    let infos = found.into_iter().map(views::account_view).collect::<XrpcResult<_>>()?;
    Ok(Output { infos, extra: Default::default() })
}
