use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::Did;

/// Resolved DID documents, with when they were fetched (unix seconds).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "did_cache")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub did: Did,
    pub doc: String,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
