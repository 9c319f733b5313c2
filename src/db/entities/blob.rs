use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::{CidString, Did};

/// An uploaded blob of an account. `temp_key` is set while no record references it yet.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "blob")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub did: Did,
    #[sea_orm(primary_key, auto_increment = false)]
    pub cid: CidString,
    pub mime_type: String,
    pub size: i64,
    pub temp_key: Option<String>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub created_at: String,
    pub takedown_ref: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
