//! Who is calling: session tokens (access and refresh JWTs), app passwords, the admin's basic
//! credentials, and inbound service auth — verified in one place, the seam the XRPC runtime
//! calls before any handler runs (see [`seam`]).

mod error;
pub mod jwt;
pub mod oauth;
mod seam;
pub mod service;
mod tokens;
mod verifier;

pub use error::AuthError;
pub use tokens::{
    new_refresh_id as tokens_new_refresh_id, now_secs, AccessClaims, RefreshClaims, Scope, TokenPair, Tokens,
};
pub use verifier::{authorization, bearer, constant_time_eq, Verifier};
