//! `app.bsky.actor.putPreferences`: replaces the account's app.bsky preferences; a session
//! that may not see the personal-details preference neither sets nor erases it, and the
//! derived declared-age preference is never stored.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use serde_json::Value;

use aurora_generated::app::bsky::actor::put_preferences::Input;
use aurora_xrpc::auth::{Access, Level};
use aurora_xrpc::{XrpcError, XrpcResult};

use super::{FULL_ACCESS_ONLY, READ_ONLY};
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::account_pref;

fn pref_type(value: &Value) -> Option<&str> {
    value.get("$type").and_then(Value::as_str)
}

pub async fn handle(ctx: &AppContext, auth: Access, input: Input) -> XrpcResult<()> {
    let did = &auth.did;
    let values =
        input.preferences.iter().map(serde_json::to_value).collect::<Result<Vec<Value>, _>>().map_err(internal)?;
    let mut types = Vec::with_capacity(values.len());
    for value in &values {
        types.push(pref_type(value).ok_or_else(|| XrpcError::invalid_request("Preference is missing a $type"))?);
    }
    if !types.iter().all(|t| t.starts_with("app.bsky.")) {
        return Err(XrpcError::invalid_request("Some preferences are not in the app.bsky namespace"));
    }
    let full = auth.meets(Level::Full);
    let forbidden: Vec<&str> = types.iter().copied().filter(|t| !full && *t == FULL_ACCESS_ONLY).collect();
    if !forbidden.is_empty() {
        return Err(XrpcError::invalid_request(format!(
            "Do not have authorization to set preferences: {}",
            forbidden.join(", ")
        )));
    }
    let txn = ctx.db.begin().await.map_err(internal)?;
    let mut delete = account_pref::Entity::delete_many().filter(account_pref::Column::Did.eq(did));
    if !full {
        delete = delete.filter(account_pref::Column::Name.ne(FULL_ACCESS_ONLY));
    }
    delete.exec(&txn).await.map_err(internal)?;
    for (value, name) in values.iter().zip(types) {
        if name == READ_ONLY {
            continue;
        }
        account_pref::Entity::insert(account_pref::ActiveModel {
            did: Set(did.clone()),
            name: Set(name.to_owned()),
            value_json: Set(value.to_string()),
            ..Default::default()
        })
        .exec_without_returning(&txn)
        .await
        .map_err(internal)?;
    }
    txn.commit().await.map_err(internal)
}
