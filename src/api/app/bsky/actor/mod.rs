//! `app.bsky.actor` preferences, which the PDS keeps for the account (the rest of the namespace
//! belongs to the AppView).

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait};
use serde_json::Value;

use aurora_generated::app::bsky::actor::{get_preferences as gp, put_preferences as pp, Service};
use aurora_xrpc::{RequestContext, XrpcError, XrpcResult};

use crate::api::{internal, Api};
use crate::db::entities::account_pref;

/// Personal details (birth date) are shown to and changed by full or privileged sessions only.
const PRIVILEGED_PREF: &str = "app.bsky.actor.defs#personalDetailsPref";

fn pref_type(value: &Value) -> Option<&str> {
    value.get("$type").and_then(Value::as_str)
}

impl Service for Api {
    async fn get_preferences(&self, ctx: RequestContext, _params: gp::Params) -> XrpcResult<gp::Output> {
        let creds = self.ctx.verifier().standard(&ctx)?;
        let rows = account_pref::Entity::find()
            .filter(account_pref::Column::Did.eq(creds.did.as_str()))
            .order_by_asc(account_pref::Column::Id)
            .all(&self.ctx.db)
            .await
            .map_err(internal)?;
        let values: Vec<Value> = rows
            .into_iter()
            .filter(|row| creds.scope.is_privileged() || row.name != PRIVILEGED_PREF)
            .filter_map(|row| serde_json::from_str(&row.value_json).ok())
            .collect();
        let preferences = serde_json::from_value(Value::Array(values)).map_err(internal)?;
        Ok(gp::Output { preferences, extra: Default::default() })
    }

    async fn put_preferences(&self, ctx: RequestContext, input: pp::Input) -> XrpcResult<()> {
        let creds = self.ctx.verifier().standard(&ctx)?;
        let Value::Array(values) = serde_json::to_value(&input.preferences).map_err(internal)? else {
            return Err(XrpcError::internal("preferences did not serialise to an array"));
        };
        for value in &values {
            match pref_type(value) {
                Some(t) if t.starts_with("app.bsky.") => {}
                Some(t) => {
                    return Err(XrpcError::invalid_request(format!(
                        "Some preferences are not in the app.bsky namespace: {t}"
                    )))
                }
                None => return Err(XrpcError::invalid_request("Preference is missing a $type")),
            }
        }
        let privileged = creds.scope.is_privileged();
        if !privileged && values.iter().any(|v| pref_type(v) == Some(PRIVILEGED_PREF)) {
            return Err(XrpcError::invalid_request(format!(
                "Do not have authorization to set preferences: {PRIVILEGED_PREF}"
            )));
        }
        let txn = self.ctx.db.begin().await.map_err(internal)?;
        let mut delete = account_pref::Entity::delete_many().filter(account_pref::Column::Did.eq(creds.did.as_str()));
        // A limited session cannot see the personal-details preference, so it must not erase it.
        if !privileged {
            delete = delete.filter(account_pref::Column::Name.ne(PRIVILEGED_PREF));
        }
        delete.exec(&txn).await.map_err(internal)?;
        for value in values {
            account_pref::Entity::insert(account_pref::ActiveModel {
                did: Set(creds.did.clone()),
                name: Set(pref_type(&value).unwrap_or_default().to_owned()),
                value_json: Set(value.to_string()),
                ..Default::default()
            })
            .exec_without_returning(&txn)
            .await
            .map_err(internal)?;
        }
        txn.commit().await.map_err(internal)
    }
}
