//! Verifies this server's own credentials — session tokens and the administrator's password —
//! into the typed credentials handlers receive, failing with an [`AuthError`] that names what
//! was wrong the way the reference PDS does.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use aurora_atproto::syntax::Did;
use aurora_xrpc::auth::{Access, AccessRule, Admin, Grant, HeaderError, Operator, Refresh, Role, Scheme};
use aurora_xrpc::RequestContext;

use super::error::AuthError;
use super::jwt::{self, JwtError};
use super::tokens::{now_secs, AccessClaims, RefreshClaims, Scope, Tokens};

/// The scheme and credentials of the `Authorization` header; `None` without one.
pub fn authorization(ctx: &RequestContext) -> Result<Option<(Scheme, &str)>, AuthError> {
    aurora_xrpc::auth::authorization(ctx).map_err(|e| match e {
        HeaderError::Malformed => AuthError::MalformedHeader,
        HeaderError::UnsupportedScheme(scheme) => AuthError::UnsupportedScheme(scheme),
    })
}

/// The bearer token, if the header carries one.
pub fn bearer(ctx: &RequestContext) -> Result<Option<&str>, AuthError> {
    Ok(authorization(ctx)?.and_then(|(scheme, token)| (scheme == Scheme::Bearer).then_some(token)))
}

fn unverifiable(error: JwtError) -> AuthError {
    match error {
        JwtError::Malformed | JwtError::WrongHeader | JwtError::BadSignature => AuthError::Unverifiable,
    }
}

/// Verifies credentials for methods.
pub struct Verifier<'a> {
    tokens: &'a Tokens,
    admin_password: &'a str,
    moderator_password: Option<&'a str>,
}

impl<'a> Verifier<'a> {
    pub fn new(tokens: &'a Tokens, admin_password: &'a str, moderator_password: Option<&'a str>) -> Self {
        Self { tokens, admin_password, moderator_password }
    }

    /// A session credential meeting `rule`, with the token generation and app password it
    /// claims (for the caller to check against the account's current state).
    pub fn access_with_claims(
        &self,
        ctx: &RequestContext,
        rule: AccessRule,
    ) -> Result<(Access, i64, Option<String>), AuthError> {
        let (access, claims) = self.verified_access(ctx, rule)?;
        Ok((access, claims.generation.unwrap_or(0), claims.app_password))
    }

    /// A session credential meeting `rule` (its claims not checked against the account).
    pub fn access(&self, ctx: &RequestContext, rule: AccessRule) -> Result<Access, AuthError> {
        self.verified_access(ctx, rule).map(|(access, _)| access)
    }

    fn verified_access(&self, ctx: &RequestContext, rule: AccessRule) -> Result<(Access, AccessClaims), AuthError> {
        let token = match authorization(ctx)? {
            None => return Err(AuthError::Missing),
            Some((Scheme::Bearer, token)) => token,
            // OAuth access tokens are not issued by this server (yet), so none can be valid.
            Some(_) => return Err(AuthError::UnexpectedScheme),
        };
        let claims: AccessClaims = jwt::verify_hs256(token, "at+jwt", self.tokens.key()).map_err(unverifiable)?;
        if claims.aud != self.tokens.service_did() {
            return Err(AuthError::Unverifiable);
        }
        if claims.exp.is_some_and(|exp| exp <= now_secs()) {
            return Err(AuthError::Expired);
        }
        // A service-auth token (`lxm`) is never a session, whoever signed it.
        if claims.lxm.is_some() {
            return Err(AuthError::MalformedToken);
        }
        let did: Did = claims.sub.parse().map_err(|_| AuthError::MalformedToken)?;
        let grant = match Scope::parse(&claims.scope) {
            Some(Scope::Access) => Grant::Session,
            Some(Scope::AppPass) => Grant::AppPassword { privileged: false },
            Some(Scope::AppPassPrivileged) => Grant::AppPassword { privileged: true },
            Some(Scope::Takendown) if rule.takendown => Grant::Takendown,
            _ => return Err(AuthError::BadScope),
        };
        let access = Access { did, grant };
        if access.is_takendown() || access.meets(rule.level) {
            Ok((access, claims))
        } else {
            Err(AuthError::BadScope)
        }
    }

    /// A refresh token; `allow_expired` for signing out with one that has run out.
    pub fn refresh(&self, ctx: &RequestContext, allow_expired: bool) -> Result<Refresh, AuthError> {
        let token = bearer(ctx)?.ok_or(AuthError::Missing)?;
        let claims: RefreshClaims = jwt::verify_hs256(token, "refresh+jwt", self.tokens.key()).map_err(unverifiable)?;
        if claims.aud != self.tokens.service_did() {
            return Err(AuthError::Unverifiable);
        }
        if !allow_expired && claims.exp.is_some_and(|exp| exp <= now_secs()) {
            return Err(AuthError::Expired);
        }
        let did: Did = claims.sub.parse().map_err(|_| AuthError::MalformedToken)?;
        if claims.scope != Scope::Refresh.as_str() {
            return Err(AuthError::BadScope);
        }
        if claims.jti.is_empty() {
            return Err(AuthError::MissingTokenId);
        }
        Ok(Refresh { did, token_id: claims.jti })
    }

    /// An operator's basic credentials: `admin` and PDS_ADMIN_PASSWORD, or `moderator` and
    /// AURORA_MODERATOR_PASSWORD; refused unless their role is at least `role`.
    pub fn admin(&self, ctx: &RequestContext, role: Role) -> Result<Admin, AuthError> {
        // Any other credential, even a malformed header, is simply not the administrator's.
        let Ok(Some((Scheme::Basic, credentials))) = authorization(ctx) else {
            return Err(AuthError::AdminRequired);
        };
        let decoded = STANDARD.decode(credentials).map_err(|_| AuthError::AdminRequired)?;
        let text = String::from_utf8(decoded).map_err(|_| AuthError::AdminRequired)?;
        let (user, password) = text.split_once(':').ok_or(AuthError::AdminRequired)?;
        let admin = match user {
            "admin" if constant_time_eq(password.as_bytes(), self.admin_password.as_bytes()) => Admin::ROOT,
            "moderator"
                if self
                    .moderator_password
                    .is_some_and(|expected| constant_time_eq(password.as_bytes(), expected.as_bytes())) =>
            {
                Admin { role: Role::Moderator, operator: Operator::ModeratorPassword }
            }
            _ => return Err(AuthError::AdminRequired),
        };
        if admin.role < role {
            return Err(AuthError::RoleTooLow);
        }
        Ok(admin)
    }
}

/// Compares secrets without an early exit that would leak how much of them matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    // Hashing first makes the comparison independent of the lengths too.
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::{HeaderMap, HeaderValue};

    fn ctx(authorization: Option<&str>) -> RequestContext {
        let mut headers = HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert("authorization", HeaderValue::from_str(value).expect("header"));
        }
        RequestContext::new("com.example.test", headers, None)
    }

    fn alice() -> Did {
        "did:plc:alice".parse().expect("a DID")
    }

    fn holder(did: &Did) -> super::super::Holder<'_> {
        super::super::Holder { did, generation: 0, app_password: None }
    }

    fn bearer_of(token: &str) -> RequestContext {
        ctx(Some(&format!("Bearer {token}")))
    }

    #[test]
    fn an_app_password_opens_standard_methods_only() {
        let tokens = Tokens::new("secret", "did:web:pds.test");
        let verifier = Verifier::new(&tokens, "admin-pass", None);
        let app = tokens.access(&holder(&alice()), Scope::AppPass);
        let access = verifier.access(&bearer_of(&app), AccessRule::STANDARD).expect("standard");
        assert_eq!(access.did.as_str(), "did:plc:alice");
        assert_eq!(access.grant, Grant::AppPassword { privileged: false });
        assert_eq!(verifier.access(&bearer_of(&app), AccessRule::FULL), Err(AuthError::BadScope));
        assert_eq!(verifier.access(&bearer_of(&app), AccessRule::PRIVILEGED), Err(AuthError::BadScope));
        let privileged = tokens.access(&holder(&alice()), Scope::AppPassPrivileged);
        assert!(verifier.access(&bearer_of(&privileged), AccessRule::PRIVILEGED).is_ok());
    }

    #[test]
    fn a_takendown_session_opens_only_methods_that_accept_it() {
        let tokens = Tokens::new("secret", "did:web:pds.test");
        let verifier = Verifier::new(&tokens, "admin-pass", None);
        let token = tokens.access(&holder(&alice()), Scope::Takendown);
        assert_eq!(verifier.access(&bearer_of(&token), AccessRule::STANDARD), Err(AuthError::BadScope));
        let access = verifier.access(&bearer_of(&token), AccessRule::FULL.with_takendown()).expect("takendown");
        assert!(access.is_takendown());
    }

    #[test]
    fn missing_malformed_expired_and_forged_tokens_get_distinct_errors() {
        let tokens = Tokens::new("secret", "did:web:pds.test");
        let verifier = Verifier::new(&tokens, "admin-pass", None);
        let rule = AccessRule::STANDARD;
        assert_eq!(verifier.access(&ctx(None), rule), Err(AuthError::Missing));
        assert_eq!(verifier.access(&ctx(Some("Bearer")), rule), Err(AuthError::MalformedHeader));
        assert_eq!(verifier.access(&ctx(Some("Token abc")), rule), Err(AuthError::UnsupportedScheme("Token".into())));
        assert_eq!(verifier.access(&ctx(Some("Basic abc")), rule), Err(AuthError::UnexpectedScheme));
        let expired = jwt::sign_hs256(
            "at+jwt",
            &AccessClaims {
                scope: Scope::Access.as_str().into(),
                aud: "did:web:pds.test".into(),
                sub: "did:plc:alice".into(),
                iat: 1,
                exp: Some(2),
                lxm: None,
                generation: None,
                app_password: None,
            },
            tokens.key(),
        );
        assert_eq!(verifier.access(&bearer_of(&expired), rule), Err(AuthError::Expired));
        let forged = Tokens::new("other", "did:web:pds.test").access(&holder(&alice()), Scope::Access);
        assert_eq!(verifier.access(&bearer_of(&forged), rule), Err(AuthError::Unverifiable));
        let refresh = tokens.refresh(&alice(), "jti").0;
        assert_eq!(verifier.access(&bearer_of(&refresh), rule), Err(AuthError::Unverifiable));
        let access = tokens.access(&holder(&alice()), Scope::Access);
        assert_eq!(verifier.refresh(&bearer_of(&access), false), Err(AuthError::Unverifiable));
    }

    #[test]
    fn the_admin_needs_the_exact_password() {
        let tokens = Tokens::new("secret", "did:web:pds.test");
        let verifier = Verifier::new(&tokens, "admin:pass", None);
        let basic = |user_pass: &str| format!("Basic {}", STANDARD.encode(user_pass));
        let admin = |header: Option<&str>| verifier.admin(&ctx(header), Role::Admin);
        assert_eq!(admin(Some(&basic("admin:admin:pass"))), Ok(Admin::ROOT), "colon in the password is fine");
        assert!(admin(Some(&basic("admin:wrong"))).is_err());
        assert!(admin(Some(&basic("root:admin:pass"))).is_err());
        assert!(admin(None).is_err());
        assert!(admin(Some("Bearer abc")).is_err());
        // Without a moderator password, nobody is a moderator, whatever they send.
        assert!(verifier.admin(&ctx(Some(&basic("moderator:"))), Role::Moderator).is_err());
    }

    #[test]
    fn a_moderator_is_refused_where_the_administrator_is_needed() {
        let tokens = Tokens::new("secret", "did:web:pds.test");
        let verifier = Verifier::new(&tokens, "admin-pass", Some("mod-pass"));
        let moderator = ctx(Some(&format!("Basic {}", STANDARD.encode("moderator:mod-pass"))));
        let found = verifier.admin(&moderator, Role::Moderator).expect("a moderator");
        assert_eq!((found.role, found.name()), (Role::Moderator, "moderator".to_owned()));
        assert_eq!(verifier.admin(&moderator, Role::Admin), Err(AuthError::RoleTooLow));
        let admin = ctx(Some(&format!("Basic {}", STANDARD.encode("admin:admin-pass"))));
        assert_eq!(verifier.admin(&admin, Role::Moderator), Ok(Admin::ROOT), "the administrator moderates too");
        let swapped = ctx(Some(&format!("Basic {}", STANDARD.encode("admin:mod-pass"))));
        assert_eq!(verifier.admin(&swapped, Role::Moderator), Err(AuthError::AdminRequired));
    }
}
