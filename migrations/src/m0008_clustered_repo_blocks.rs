//! On SQLite, repository blocks move to a `WITHOUT ROWID` table clustered by (did, cid): an
//! export reads one repository's blocks as a range of adjacent pages instead of one random
//! table lookup per block, which dominated `getRepo` once a repository outgrew the page cache.
//! PostgreSQL keeps its heap table; the schema is otherwise unchanged.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::common::actor_fk;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RepoBlock {
    Table,
    Did,
    Cid,
    Rev,
    Size,
    Content,
}

#[derive(DeriveIden)]
enum RepoBlockClustered {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        let create = Table::create()
            .table(RepoBlockClustered::Table)
            .col(ColumnDef::new(RepoBlock::Did).string().not_null())
            .col(ColumnDef::new(RepoBlock::Cid).string().not_null())
            .col(ColumnDef::new(RepoBlock::Rev).string().not_null())
            .col(ColumnDef::new(RepoBlock::Size).integer().not_null())
            .col(ColumnDef::new(RepoBlock::Content).binary().not_null())
            .primary_key(Index::create().col(RepoBlock::Did).col(RepoBlock::Cid))
            .foreign_key(&mut actor_fk(RepoBlockClustered::Table, "fk_repo_block_actor"))
            .to_owned();
        let columns = || [RepoBlock::Did, RepoBlock::Cid, RepoBlock::Rev, RepoBlock::Size, RepoBlock::Content];
        let copy = Query::insert()
            .into_table(RepoBlockClustered::Table)
            .columns(columns())
            .select_from(Query::select().columns(columns()).from(RepoBlock::Table).to_owned())
            .map_err(|e| DbErr::Custom(e.to_string()))?
            .to_owned();
        let index = Index::create()
            .name("idx_repo_block_did_rev")
            .table(RepoBlock::Table)
            .col(RepoBlock::Did)
            .col(RepoBlock::Rev)
            .to_owned();
        // One batch on one connection, in one transaction: another pooled connection could
        // still hold a snapshot in which the old table exists. sea-query has no table options
        // for SQLite, so the clause goes on the end of its SQL.
        let script = [
            "BEGIN".to_owned(),
            format!("{} WITHOUT ROWID", create.to_string(SqliteQueryBuilder)),
            copy.to_string(SqliteQueryBuilder),
            Table::drop().table(RepoBlock::Table).to_owned().to_string(SqliteQueryBuilder),
            Table::rename().table(RepoBlockClustered::Table, RepoBlock::Table).to_owned().to_string(SqliteQueryBuilder),
            index.to_string(SqliteQueryBuilder),
            "COMMIT".to_owned(),
        ]
        .join(";\n");
        manager.get_connection().execute_unprepared(&script).await.map(|_| ())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The clustered table holds the same rows under the same schema; nothing to undo.
        Ok(())
    }
}
