use sea_orm::entity::prelude::*;

/// A record's reference to a blob: a blob stays while any record references it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "record_blob")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub blob_cid: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub record_uri: String,
    pub did: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
