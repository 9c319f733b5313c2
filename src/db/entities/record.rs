use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::{AtUri, CidString, Did, Nsid, RecordKey, Tid};

/// One record of a repository, by its AT-URI.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "record")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub uri: AtUri,
    pub cid: CidString,
    pub did: Did,
    pub collection: Nsid,
    pub rkey: RecordKey,
    pub rev: Tid,
    pub indexed_at: String,
    pub takedown_ref: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
