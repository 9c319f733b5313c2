//! A pushed authorization request, until its code is exchanged or it expires.

use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::Did;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_request")]
pub struct Model {
    /// `req-<32 hex>`, the tail of the `request_uri`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub client_id: String,
    /// How the client authenticated (JSON).
    pub client_auth: String,
    /// The validated authorization parameters (JSON).
    pub parameters: String,
    pub dpop_jkt: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
    /// The browser that first opened the request.
    pub device_id: Option<String>,
    /// The account that consented.
    pub did: Option<Did>,
    /// `cod-<64 hex>`, once consent was given.
    pub code: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
