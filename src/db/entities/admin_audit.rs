use sea_orm::entity::prelude::*;

/// One admin action: who took it, in what role, what it was, on what, and its particulars
/// (a takedown's reference, a new handle; never a password).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "admin_audit")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: String,
    pub operator: String,
    pub role: String,
    pub action: String,
    pub subject: Option<String>,
    pub detail: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
