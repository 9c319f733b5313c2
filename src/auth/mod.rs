//! Who is calling: session tokens (access and refresh JWTs), app passwords, the admin's basic
//! credentials, and inbound service auth — verified in one place, the seam the XRPC runtime
//! calls before any handler runs (see [`seam`]).

mod error;
pub mod gate;
pub mod jwt;
pub mod oauth;
mod seam;
pub mod service;
mod tokens;
mod verifier;

pub use error::AuthError;
pub use tokens::{
    new_refresh_id as tokens_new_refresh_id, now_secs, AccessClaims, Holder, RefreshClaims, Scope, TokenPair, Tokens,
};
pub use verifier::{authorization, bearer, constant_time_eq, Verifier};

/// A session (bearer) token meeting `rule`, still good for its account: not revoked by a
/// password change or an app password's removal, its account present and (unless the rule
/// allows it) not taken down.
pub async fn session_access(
    ctx: &crate::context::AppContext,
    req: &aurora_xrpc::RequestContext,
    rule: aurora_xrpc::auth::AccessRule,
) -> aurora_xrpc::XrpcResult<aurora_xrpc::auth::Access> {
    let (access, generation, app_password) = ctx.verifier().access_with_claims(req, rule)?;
    let facts = gate::TokenFacts {
        generation,
        app_password: app_password.as_deref(),
        takendown_allowed: access.is_takendown() || rule.takendown,
    };
    match ctx.gate.check(&ctx.db, &access.did, facts).await {
        Ok(()) => Ok(access),
        Err(gate::GateError::Refused(error)) => Err(error.into()),
        Err(gate::GateError::TakenDown) => Err(crate::account::status::Refusal::Takendown.into()),
        Err(gate::GateError::Db(e)) => Err(aurora_xrpc::XrpcError::internal(e)),
    }
}
