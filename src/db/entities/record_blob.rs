use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::{AtUri, CidString, Did};

/// A record's reference to a blob: a blob stays while any record references it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "record_blob")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub blob_cid: CidString,
    #[sea_orm(primary_key, auto_increment = false)]
    pub record_uri: AtUri,
    pub did: Did,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
