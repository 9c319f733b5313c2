use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::Did;

/// A live refresh token, by its `jti`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_token")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub did: Did,
    pub expires_at: String,
    pub app_password_name: Option<String>,
    pub next_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
