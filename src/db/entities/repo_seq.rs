use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::Did;

/// The persisted firehose: one row per event, in sequence order.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "repo_seq")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub did: Did,
    pub event_type: String,
    pub event: Vec<u8>,
    pub invalidated: bool,
    pub sequenced_at: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
