use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::Did;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "app_password")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub did: Did,
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub password_hash: String,
    pub privileged: bool,
    pub created_at: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
