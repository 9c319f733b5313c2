//! `com.atproto.server.listAppPasswords`: the account's app passwords, by name (never their
//! secrets).

use aurora_generated::com::atproto::server::list_app_passwords::{AppPassword, Output};
use aurora_xrpc::auth::Access;
use aurora_xrpc::XrpcResult;

use crate::account;
use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, auth: Access) -> XrpcResult<Output> {
    let rows = account::app_passwords(&ctx.db, &auth.did).await.map_err(internal)?;
    let passwords = rows
        .into_iter()
        .map(|row| {
            Ok(AppPassword {
                name: row.name,
                created_at: row.created_at.parse().map_err(internal)?,
                privileged: Some(row.privileged),
                extra: Default::default(),
            })
        })
        .collect::<XrpcResult<Vec<_>>>()?;
    Ok(Output { passwords, extra: Default::default() })
}
