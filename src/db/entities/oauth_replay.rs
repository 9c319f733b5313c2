//! One-time values seen (DPoP proof ids, client assertion ids, PKCE challenges), kept until
//! they could no longer be accepted anyway.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_replay")]
pub struct Model {
    /// `<namespace>:<value>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
