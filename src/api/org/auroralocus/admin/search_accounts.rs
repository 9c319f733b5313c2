//! `org.auroralocus.admin.searchAccounts`: accounts by part of a handle, DID or email address,
//! with their hosting status, taken down and deactivated ones included (`com.atproto.admin`'s
//! search looks at email addresses only).

use aurora_generated::org::auroralocus::admin::search_accounts::{Account, AccountStatus, Output, Params};
use aurora_xrpc::XrpcResult;

use crate::admin::accounts::{self, Search};
use crate::api::{internal, views};
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let limit = params.limit.clamp(1, 100) as u64;
    let search = Search {
        text: params.q.as_deref(),
        taken_down_only: params.takendown_only,
        after: params.cursor.as_deref(),
        limit,
        ..Default::default()
    };
    let found = accounts::search(&ctx.db, search).await.map_err(internal)?;
    let cursor = (found.len() as u64 == limit).then(|| found.last().map(|i| i.actor.did.to_string())).flatten();
    let accounts = found
        .into_iter()
        .map(|info| {
            let status = crate::account::actor_status(&info.actor).as_str().unwrap_or("active");
            let takedown_ref = info.actor.takedown_ref.clone();
            let suspended_until = info.actor.takedown_until.as_deref().and_then(|t| t.parse().ok());
            Ok(Account {
                status: AccountStatus::from(status),
                takedown_ref,
                suspended_until,
                info: views::account_view(info)?,
                extra: Default::default(),
            })
        })
        .collect::<XrpcResult<_>>()?;
    Ok(Output { accounts, cursor, extra: Default::default() })
}
