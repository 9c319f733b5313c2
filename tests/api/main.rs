//! Black-box tests of the real server: each test spawns Aurora on port 0 with a fresh
//! database (SQLite always, PostgreSQL when AURORA_TEST_POSTGRES_URL is set) and talks HTTP.

#[macro_use]
mod helpers;
mod appview_double;
mod dns_double;
mod plc_double;
mod s3_server;
mod samples;
mod smtp_sink;
mod sync;

mod account_pages;
mod admin;
mod admin_pages;
mod backup;
mod connections;
mod firehose;
mod foundation;
mod identity;
mod jobs;
mod migrate_db;
mod migration;
mod oauth;
mod operations;
mod pg_reads;
mod preferences;
mod proxy;
mod rate_limits;
mod repo_blobs;
mod repo_import;
mod repo_records;
mod s3_blobs;
mod schema_upgrades;
mod server_accounts;
mod server_email;
mod server_lifecycle;
mod server_sessions;
mod token_safety;
mod upkeep;
mod xrpc_surface;
