//! A refresh token already exchanged: presenting it again ends its session.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_used_refresh_token")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub refresh_token: String,
    pub session_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
