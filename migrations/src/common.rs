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

/// On SQLite, replaces `table` by a `WITHOUT ROWID` table made by `create` (named `temporary`,
/// with the same columns), copying every row of `columns`, then makes `indexes` on it. One batch
/// on one connection, in one transaction: another pooled connection could still hold a snapshot
/// in which the old table exists. sea-query has no table options for SQLite, so the clause goes
/// on the end of its SQL.
pub async fn cluster_on_sqlite<C: IntoIden + 'static>(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    temporary: impl IntoIden,
    create: TableCreateStatement,
    columns: impl Fn() -> Vec<C>,
    indexes: &[IndexCreateStatement],
) -> Result<(), DbErr> {
    let (table, temporary) = (table.into_iden(), temporary.into_iden());
    let copy = Query::insert()
        .into_table(temporary.clone())
        .columns(columns())
        .select_from(Query::select().columns(columns()).from(table.clone()).to_owned())
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .to_owned();
    let mut script = vec![
        "BEGIN".to_owned(),
        format!("{} WITHOUT ROWID", create.to_string(SqliteQueryBuilder)),
        copy.to_string(SqliteQueryBuilder),
        Table::drop().table(table.clone()).to_owned().to_string(SqliteQueryBuilder),
        Table::rename().table(temporary, table).to_owned().to_string(SqliteQueryBuilder),
    ];
    script.extend(indexes.iter().map(|index| index.to_string(SqliteQueryBuilder)));
    script.push("COMMIT".to_owned());
    manager.get_connection().execute_unprepared(&script.join(";\n")).await.map(|_| ())
}
