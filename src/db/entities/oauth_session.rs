//! An OAuth session: the grant one authorization code started, its current access token id and
//! refresh token, rotated together on each refresh.

use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::Did;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_session")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `tok-<32 hex>`: the `jti` of the current access token.
    pub token_id: String,
    pub did: Did,
    pub client_id: String,
    pub client_auth: String,
    pub device_id: Option<String>,
    pub dpop_jkt: String,
    /// The granted scope, permission sets expanded.
    pub scope: String,
    pub parameters: String,
    /// The code the session was started with (a replay of it ends the session).
    pub code: Option<String>,
    /// `ref-<64 hex>`.
    pub refresh_token: Option<String>,
    /// Unix seconds: when the grant was made, last refreshed, and when the access token expires.
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
