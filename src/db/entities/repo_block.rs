use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::{CidString, Did, Tid};

/// One block (commit, MST node or record) of a repository.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "repo_block")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub did: Did,
    #[sea_orm(primary_key, auto_increment = false)]
    pub cid: CidString,
    pub rev: Tid,
    pub size: i32,
    pub content: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
