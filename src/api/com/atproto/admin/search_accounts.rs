//! `com.atproto.admin.searchAccounts`: accounts whose email address contains the text asked
//! for (all accounts without it), by DID, paged.

use aurora_generated::com::atproto::admin::search_accounts::{Output, Params};
use aurora_xrpc::XrpcResult;

use crate::admin::accounts::{self, Search};
use crate::api::{internal, views};
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let limit = params.limit.clamp(1, 100) as u64;
    let search =
        Search { email: params.email.as_deref(), after: params.cursor.as_deref(), limit, ..Default::default() };
    let found = accounts::search(&ctx.db, search).await.map_err(internal)?;
    let cursor = (found.len() as u64 == limit).then(|| found.last().map(|i| i.actor.did.to_string())).flatten();
    let accounts = found.into_iter().map(views::account_view).collect::<XrpcResult<_>>()?;
    Ok(Output { accounts, cursor, extra: Default::default() })
}
