use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::{CidString, Did, Tid};

/// The current commit of each repository.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "repo_root")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub did: Did,
    pub cid: CidString,
    pub rev: Tid,
    pub indexed_at: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
