//! An account's authenticator app (TOTP), pending until a first code confirms it.

use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::Did;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account_totp")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub did: Did,
    /// The shared secret, sealed by the key vault.
    pub secret_sealed: String,
    /// Unix seconds of confirmation; none while pending.
    pub enabled_at: Option<i64>,
    /// The last time step a code was accepted for.
    pub last_step: i64,
    /// SHA-256 hex of each unused recovery code (JSON array).
    pub recovery_codes: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
