//! Inbound service auth: a JWT another atproto service (or an account acting through one)
//! signed with the issuer's `#atproto` key, for this server (`aud`) and one method (`lxm`).

use serde::Deserialize;

use aurora_atproto::syntax::{Did, Nsid};
use aurora_xrpc::auth::Service;

use super::error::AuthError;
use super::jwt;
use crate::identity::{self, Resolver};

#[derive(Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    exp: i64,
    #[serde(default)]
    lxm: Option<String>,
}

/// Longest a token may still have to live: service tokens are minted for minutes (at most an
/// hour, plus some clock skew). A longer-lived one would widen the window in which a captured
/// token can be replayed.
const MAX_LIFETIME_SECS: i64 = 65 * 60;

fn refused(name: &'static str, message: impl Into<String>) -> AuthError {
    AuthError::Service(name, message.into())
}

/// Verifies `token` for `method` on this server.
pub async fn verify(token: &str, service_did: &str, method: &str, resolver: &Resolver) -> Result<Service, AuthError> {
    let (header, _, _, payload) = jwt::split(token).map_err(|_| refused("BadJwt", "poorly formatted jwt"))?;
    if let Some(typ) = header.typ.as_deref().filter(|t| matches!(*t, "at+jwt" | "refresh+jwt" | "dpop+jwt")) {
        return Err(refused("BadJwtType", format!("Invalid jwt type \"{typ}\"")));
    }
    let claims: Claims = jwt::claims(payload).map_err(|_| refused("BadJwt", "poorly formatted jwt"))?;
    if super::now_secs() > claims.exp {
        return Err(refused("JwtExpired", "jwt expired"));
    }
    if claims.exp > super::now_secs() + MAX_LIFETIME_SECS {
        return Err(refused("BadJwt", "jwt expires too far in the future"));
    }
    match claims.lxm.as_deref() {
        Some(lxm) if lxm == method => {}
        Some(_) => {
            return Err(refused(
                "BadJwtLexiconMethod",
                format!("bad jwt lexicon method (\"lxm\"). must match: {method}"),
            ))
        }
        None => {
            return Err(refused(
                "BadJwtLexiconMethod",
                format!("missing jwt lexicon method (\"lxm\"). must match: {method}"),
            ))
        }
    }
    if claims.aud != service_did {
        return Err(refused("BadJwtAudience", "jwt audience does not match service did"));
    }
    let (issuer, key_id) = issuer_key(&claims.iss);
    let issuer = issuer.to_owned();
    let Ok(iss) = issuer.parse::<Did>() else {
        return Err(refused("BadJwtIss", "jwt issuer is not a DID"));
    };
    let aud: Did = claims.aud.parse().map_err(|_| refused("BadJwtAudience", "jwt audience is not a DID"))?;
    let lxm: Option<Nsid> = claims.lxm.as_deref().and_then(|m| m.parse().ok());
    // A signature that fails against a cached document is retried once against a fresh one:
    // the issuer may have rotated its key.
    for fresh in [false, true] {
        let doc = resolver.did_doc(&iss, fresh).await.map_err(|_| refused("BadJwtIss", "could not resolve iss did"))?;
        let key = identity::verification_key(&issuer, &doc, key_id)
            .ok_or_else(|| refused("BadJwtIss", "missing or bad key in did doc"))?;
        if jwt::verify_es(token, &key).is_ok() {
            return Ok(Service { iss, aud, lxm });
        }
    }
    Err(refused("BadJwtSignature", "jwt signature does not match jwt issuer"))
}

/// The issuer's DID and the id of the key it signs with: the service it speaks as
/// (`did#service`) decides, a labeler signing with its label key.
fn issuer_key(iss: &str) -> (&str, &str) {
    match iss.split_once('#') {
        Some((did, "atproto_labeler")) => (did, "atproto_label"),
        Some((did, _)) => (did, "atproto"),
        None => (iss, "atproto"),
    }
}

/// Longest lifetime getServiceAuth grants a token bound to one method, and one that is not.
pub const MAX_WITH_METHOD_SECS: i64 = 60 * 60;
pub const MAX_WITHOUT_METHOD_SECS: i64 = 60;

#[derive(serde::Serialize)]
struct MintedClaims<'a> {
    iat: i64,
    iss: &'a str,
    aud: &'a str,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    lxm: Option<&'a str>,
    jti: String,
}

/// A service-auth token from `iss` (signed with its repository key) for `aud`, bound to `lxm`
/// when given, expiring at `exp`. Callers check what the caller may ask for.
pub async fn mint(
    ctx: &crate::context::AppContext,
    iss: &Did,
    aud: &str,
    lxm: Option<&str>,
    exp: i64,
) -> Result<String, crate::keys::KeyError> {
    use rand::RngCore;
    let key = crate::keys::service_signing_key(ctx, iss).await?;
    let mut jti = [0u8; 16];
    rand::rng().fill_bytes(&mut jti);
    let claims = MintedClaims { iat: super::now_secs(), iss: iss.as_str(), aud, exp, lxm, jti: hex::encode(jti) };
    Ok(jwt::sign_es(&claims, &key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_labeler_signs_with_its_label_key() {
        assert_eq!(issuer_key("did:plc:abc#atproto_labeler"), ("did:plc:abc", "atproto_label"));
        assert_eq!(issuer_key("did:plc:abc#bsky_appview"), ("did:plc:abc", "atproto"));
        assert_eq!(issuer_key("did:plc:abc"), ("did:plc:abc", "atproto"));
    }
}
