//! App passwords: per-app credentials that can be revoked without changing the account password.

use aurora_generated::com::atproto::server::{
    create_app_password as cap, list_app_passwords as lap, revoke_app_password as rap,
};
use aurora_xrpc::{RequestContext, XrpcError, XrpcResult};

use crate::account::{self, password};
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::app_password;

pub async fn create(ctx: &AppContext, req: &RequestContext, input: cap::Input) -> XrpcResult<cap::Output> {
    let creds = ctx.verifier().full(req)?;
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.len() > 100 {
        return Err(XrpcError::invalid_request("App password names must have 1 to 100 characters"));
    }
    if account::app_password(&ctx.db, &creds.did, &name).await.map_err(internal)?.is_some() {
        return Err(XrpcError::invalid_request(format!("An app password named {name:?} already exists")));
    }
    let secret = password::new_app_password();
    let created_at = account::now();
    let privileged = input.privileged.unwrap_or(false);
    let row = app_password::Model {
        did: creds.did.clone(),
        name: name.clone(),
        password_hash: password::hash_app_password(&creds.did, secret.clone()).await,
        privileged,
        created_at: created_at.clone(),
    };
    account::insert_app_password(&ctx.db, row).await.map_err(internal)?;
    Ok(cap::AppPassword {
        name,
        password: secret,
        created_at: created_at.parse().map_err(internal)?,
        privileged: Some(privileged),
        extra: Default::default(),
    })
}

pub async fn list(ctx: &AppContext, req: &RequestContext) -> XrpcResult<lap::Output> {
    let creds = ctx.verifier().standard(req)?;
    let rows = account::app_passwords(&ctx.db, &creds.did).await.map_err(internal)?;
    let passwords = rows
        .into_iter()
        .map(|row| {
            Ok(lap::AppPassword {
                name: row.name,
                created_at: row.created_at.parse().map_err(internal)?,
                privileged: Some(row.privileged),
                extra: Default::default(),
            })
        })
        .collect::<XrpcResult<Vec<_>>>()?;
    Ok(lap::Output { passwords, extra: Default::default() })
}

pub async fn revoke(ctx: &AppContext, req: &RequestContext, input: rap::Input) -> XrpcResult<()> {
    let creds = ctx.verifier().standard(req)?;
    account::revoke_app_password(&ctx.db, &creds.did, &input.name).await.map_err(internal)
}
