//! A browser someone signed in on: its cookie names the row, and only the secret's hash is kept.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_device")]
pub struct Model {
    /// `dev-<32 hex>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// SHA-256 of the cookie's secret, hex.
    pub secret_hash: String,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
    pub last_seen_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
