use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::{Did, Handle};

/// Every hosted identity: the DID, its handle and its lifecycle state.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "actor")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub did: Did,
    pub handle: Option<Handle>,
    pub created_at: String,
    pub deactivated_at: Option<String>,
    pub delete_after: Option<String>,
    pub takedown_ref: Option<String>,
    /// When a takedown with an expiry (a suspension) lifts by itself.
    pub takedown_until: Option<String>,
    /// Set when the account was deleted; its data is purged once the grace period has passed.
    pub deleted_at: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
