use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::Did;

/// An account's repository signing key, sealed (never stored in the clear).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_key")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub did: Did,
    pub key_type: String,
    pub sealed: Vec<u8>,
    pub created_at: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
