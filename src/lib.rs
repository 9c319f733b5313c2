//! Aurora Locus: an atproto Personal Data Server.

pub mod api;
pub mod config;
pub mod context;
pub mod db;
pub mod server;
pub mod telemetry;
pub mod web;
