//! Blobs: uploaded files (temporary until a record references them) and which records
//! reference which blobs.

use sea_orm_migration::prelude::*;

use crate::common::actor_fk;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Blob {
    Table,
    Did,
    Cid,
    MimeType,
    Size,
    TempKey,
    Width,
    Height,
    CreatedAt,
    TakedownRef,
}

#[derive(DeriveIden)]
enum RecordBlob {
    Table,
    BlobCid,
    RecordUri,
    Did,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Blob::Table)
                    .col(ColumnDef::new(Blob::Did).string().not_null())
                    .col(ColumnDef::new(Blob::Cid).string().not_null())
                    .col(ColumnDef::new(Blob::MimeType).string().not_null())
                    .col(ColumnDef::new(Blob::Size).big_integer().not_null())
                    .col(ColumnDef::new(Blob::TempKey).string().null())
                    .col(ColumnDef::new(Blob::Width).integer().null())
                    .col(ColumnDef::new(Blob::Height).integer().null())
                    .col(ColumnDef::new(Blob::CreatedAt).string().not_null())
                    .col(ColumnDef::new(Blob::TakedownRef).string().null())
                    .primary_key(Index::create().col(Blob::Did).col(Blob::Cid))
                    .foreign_key(&mut actor_fk(Blob::Table, "fk_blob_actor"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RecordBlob::Table)
                    .col(ColumnDef::new(RecordBlob::BlobCid).string().not_null())
                    .col(ColumnDef::new(RecordBlob::RecordUri).string().not_null())
                    .col(ColumnDef::new(RecordBlob::Did).string().not_null())
                    .primary_key(Index::create().col(RecordBlob::BlobCid).col(RecordBlob::RecordUri))
                    .foreign_key(&mut actor_fk(RecordBlob::Table, "fk_record_blob_actor"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_record_blob_uri")
                    .table(RecordBlob::Table)
                    .col(RecordBlob::RecordUri)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(RecordBlob::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Blob::Table).to_owned()).await
    }
}
