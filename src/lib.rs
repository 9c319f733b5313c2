//! Aurora Locus: an atproto Personal Data Server.

pub mod account;
pub mod api;
pub mod auth;
pub mod blobs;
pub mod config;
pub mod conformance;
pub mod context;
pub mod crawl;
pub mod db;
pub mod firehose;
pub mod identity;
pub mod keys;
pub mod lexicon_resolution;
pub mod mail;
pub mod maintenance;
pub mod oauth;
pub mod plc;
pub mod proxy;
pub mod rate_limit;
pub mod repo;
pub mod sequencer;
pub mod server;
pub mod storage_quota;
pub mod telemetry;
pub mod web;
