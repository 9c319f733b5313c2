use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::Did;

/// A signing key handed out before its account exists, sealed like every other key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reserved_key")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key_did: Did,
    pub did: Option<Did>,
    pub sealed: Vec<u8>,
    pub created_at: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
