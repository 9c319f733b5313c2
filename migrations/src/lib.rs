//! Schema migrations. The same migrations serve SQLite and PostgreSQL; each is written with
//! sea-query's schema builder so that neither dialect is typed by hand.

pub use sea_orm_migration::prelude::*;

mod common;
mod m0001_server_meta;
mod m0002_accounts_and_repos;
mod m0003_email_invites_identity;
mod m0004_reserved_keys;
mod m0005_records;
mod m0006_preferences;
mod m0007_blobs;
mod m0008_clustered_repo_blocks;
mod m0009_account_deletion;
mod m0010_email_auth_factor;
mod m0011_oauth;
mod m0012_totp;
mod m0013_token_generation;
mod m0014_email_code_attempts;
mod m0015_administration;
mod m0016_job_schedule;
mod m0017_event_log_head;
mod m0018_clustered_records;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_server_meta::Migration),
            Box::new(m0002_accounts_and_repos::Migration),
            Box::new(m0003_email_invites_identity::Migration),
            Box::new(m0004_reserved_keys::Migration),
            Box::new(m0005_records::Migration),
            Box::new(m0006_preferences::Migration),
            Box::new(m0007_blobs::Migration),
            Box::new(m0008_clustered_repo_blocks::Migration),
            Box::new(m0009_account_deletion::Migration),
            Box::new(m0010_email_auth_factor::Migration),
            Box::new(m0011_oauth::Migration),
            Box::new(m0012_totp::Migration),
            Box::new(m0013_token_generation::Migration),
            Box::new(m0014_email_code_attempts::Migration),
            Box::new(m0015_administration::Migration),
            Box::new(m0016_job_schedule::Migration),
            Box::new(m0017_event_log_head::Migration),
            Box::new(m0018_clustered_records::Migration),
        ]
    }
}
