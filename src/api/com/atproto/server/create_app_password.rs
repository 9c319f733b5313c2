//! `com.atproto.server.createAppPassword`: a named credential for one app, revocable without
//! changing the account password; shown once.

use aurora_generated::com::atproto::server::create_app_password::{AppPassword, Input};
use aurora_xrpc::auth::Access;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::{self, password};
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::app_password;

pub async fn handle(ctx: &AppContext, auth: Access, input: Input) -> XrpcResult<AppPassword> {
    let did = &auth.did;
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.len() > 100 {
        return Err(XrpcError::invalid_request("App password names must have 1 to 100 characters"));
    }
    if account::app_password(&ctx.db, did, &name).await.map_err(internal)?.is_some() {
        return Err(XrpcError::invalid_request(format!("An app password named {name:?} already exists")));
    }
    let secret = password::new_app_password();
    let created_at = account::now();
    let privileged = input.privileged.unwrap_or(false);
    let row = app_password::Model {
        did: did.clone(),
        name: name.clone(),
        password_hash: password::hash_app_password(did, secret.clone()).await?,
        privileged,
        created_at: created_at.clone(),
    };
    account::insert_app_password(&ctx.db, row).await.map_err(internal)?;
    Ok(AppPassword {
        name,
        password: secret,
        created_at: created_at.parse().map_err(internal)?,
        privileged: Some(privileged),
        extra: Default::default(),
    })
}
