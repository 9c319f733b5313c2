//! SeaORM models, one per table (see `migrations/`).

pub mod account;
pub mod account_pref;
pub mod actor;
pub mod app_password;
pub mod blob;
pub mod did_cache;
pub mod email_token;
pub mod invite_code;
pub mod invite_code_use;
pub mod lexicon_cache;
pub mod oauth_authorized_client;
pub mod oauth_device;
pub mod oauth_device_account;
pub mod oauth_replay;
pub mod oauth_request;
pub mod oauth_session;
pub mod oauth_used_refresh_token;
pub mod record;
pub mod record_blob;
pub mod refresh_token;
pub mod repo_block;
pub mod repo_root;
pub mod repo_seq;
pub mod reserved_key;
pub mod server_meta;
pub mod signing_key;
