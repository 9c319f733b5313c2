use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::Did;

/// Login credentials of an actor that has them.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub did: Did,
    pub email: Option<String>,
    pub email_confirmed_at: Option<String>,
    pub password_hash: String,
    pub invites_disabled: bool,
    /// Password logins also need a mailed code.
    pub email_auth_factor: bool,
    /// Session tokens issued in an older generation no longer work (moved on by a password
    /// change).
    pub token_generation: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
