//! Pieces several migrations share.

use sea_orm_migration::prelude::*;

/// A foreign key from `table.did` to `actor.did` that deletes the row with its account.
pub fn actor_fk(table: impl IntoIden + 'static, name: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from_tbl(table)
        .from_col(Alias::new("did"))
        .to_tbl(Alias::new("actor"))
        .to_col(Alias::new("did"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}
