//! On SQLite, repository blocks move to a `WITHOUT ROWID` table clustered by (did, cid): an
//! export reads one repository's blocks as a range of adjacent pages instead of one random
//! table lookup per block, which dominated `getRepo` once a repository outgrew the page cache.
//! PostgreSQL keeps its heap table; the schema is otherwise unchanged.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::common::{actor_fk, cluster_on_sqlite};

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
        let columns = || vec![RepoBlock::Did, RepoBlock::Cid, RepoBlock::Rev, RepoBlock::Size, RepoBlock::Content];
        let index = Index::create()
            .name("idx_repo_block_did_rev")
            .table(RepoBlock::Table)
            .col(RepoBlock::Did)
            .col(RepoBlock::Rev)
            .to_owned();
        cluster_on_sqlite(manager, RepoBlock::Table, RepoBlockClustered::Table, create, columns, &[index]).await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The clustered table holds the same rows under the same schema; nothing to undo.
        Ok(())
    }
}
