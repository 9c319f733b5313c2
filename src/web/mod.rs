//! The service's own pages and endpoints, outside the lexicon-defined XRPC methods.

pub mod account;
pub mod admin;
pub mod docs;
pub mod health;
pub mod landing;
pub mod metrics;
pub mod tls_check;
pub mod well_known;
