//! The record index: one row per record in each repository, for reads and listing without
//! walking the MST.

use sea_orm_migration::prelude::*;

use crate::common::actor_fk;

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

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Record::Table)
                    .col(ColumnDef::new(Record::Uri).string().not_null().primary_key())
                    .col(ColumnDef::new(Record::Cid).string().not_null())
                    .col(ColumnDef::new(Record::Did).string().not_null())
                    .col(ColumnDef::new(Record::Collection).string().not_null())
                    .col(ColumnDef::new(Record::Rkey).string().not_null())
                    .col(ColumnDef::new(Record::Rev).string().not_null())
                    .col(ColumnDef::new(Record::IndexedAt).string().not_null())
                    .col(ColumnDef::new(Record::TakedownRef).string().null())
                    .foreign_key(&mut actor_fk(Record::Table, "fk_record_actor"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_record_did_collection_rkey")
                    .table(Record::Table)
                    .col(Record::Did)
                    .col(Record::Collection)
                    .col(Record::Rkey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Record::Table).to_owned()).await
    }
}
