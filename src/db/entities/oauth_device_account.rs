//! An account signed in on a browser.

use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::Did;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_device_account")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub device_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub did: Did,
    /// Unix seconds of the last password sign-in.
    pub authenticated_at: i64,
    /// Whether the person asked to stay signed in on this browser.
    pub remember: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
