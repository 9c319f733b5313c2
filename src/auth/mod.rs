//! Who is calling: session tokens (access and refresh JWTs), app passwords, the admin's basic
//! credentials, and inbound service auth.

pub mod jwt;
pub mod methods;
pub mod service;
mod tokens;
mod verifier;

pub use tokens::{
    new_refresh_id as tokens_new_refresh_id, now_secs, AccessClaims, RefreshClaims, Scope, TokenPair, Tokens,
};
pub use verifier::{constant_time_eq, AccessCredentials, RefreshCredentials, Verifier};
