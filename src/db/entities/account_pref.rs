use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::Did;

/// One preference object of an account, kept as the JSON the client sent.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account_pref")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub did: Did,
    pub name: String,
    pub value_json: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
