//! On SQLite, the record index moves to a `WITHOUT ROWID` table keyed by (did, collection,
//! rkey), the key every read uses: a listRecords page becomes a range of the table itself and a
//! getRecord one seek, where each went through a secondary index and then to the row by its
//! rowid (a second descent per record). The URI, which writes and deletes name, keeps a unique
//! index of its own, so the table still has two b-trees to write, not the three it had.
//! PostgreSQL keeps its heap table; the schema is otherwise unchanged.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::common::{actor_fk, cluster_on_sqlite};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Record {
    Table,
    Uri,
    Cid,
    Did,
    Collection,
    Rkey,
    Rev,
    IndexedAt,
    TakedownRef,
}

#[derive(DeriveIden)]
enum RecordClustered {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        let create = Table::create()
            .table(RecordClustered::Table)
            .col(ColumnDef::new(Record::Uri).string().not_null())
            .col(ColumnDef::new(Record::Cid).string().not_null())
            .col(ColumnDef::new(Record::Did).string().not_null())
            .col(ColumnDef::new(Record::Collection).string().not_null())
            .col(ColumnDef::new(Record::Rkey).string().not_null())
            .col(ColumnDef::new(Record::Rev).string().not_null())
            .col(ColumnDef::new(Record::IndexedAt).string().not_null())
            .col(ColumnDef::new(Record::TakedownRef).string().null())
            .primary_key(Index::create().col(Record::Did).col(Record::Collection).col(Record::Rkey))
            .foreign_key(&mut actor_fk(RecordClustered::Table, "fk_record_actor"))
            .to_owned();
        let columns = || {
            vec![
                Record::Uri,
                Record::Cid,
                Record::Did,
                Record::Collection,
                Record::Rkey,
                Record::Rev,
                Record::IndexedAt,
                Record::TakedownRef,
            ]
        };
        let by_uri = Index::create().name("idx_record_uri").table(Record::Table).col(Record::Uri).unique().to_owned();
        cluster_on_sqlite(manager, Record::Table, RecordClustered::Table, create, columns, &[by_uri]).await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The clustered table holds the same rows, each as unique as before (a URI names one
        // key, and both are unique); nothing to undo.
        Ok(())
    }
}
