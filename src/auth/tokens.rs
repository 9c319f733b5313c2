//! Session tokens as the reference PDS issues them, so official clients handle them unchanged:
//! HS256 access tokens (`at+jwt`, two hours) and refresh tokens (`refresh+jwt`, 90 days, with a
//! `jti` the database tracks for rotation and revocation).

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use aurora_atproto::syntax::Did;

use super::jwt;

pub const ACCESS_LIFETIME_SECS: i64 = 2 * 60 * 60;
pub const REFRESH_LIFETIME_SECS: i64 = 90 * 24 * 60 * 60;

/// What a token lets its bearer do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A session opened with the account password.
    Access,
    /// A session opened with an app password.
    AppPass,
    /// A session opened with a privileged app password (may reach chat and service auth).
    AppPassPrivileged,
    /// A taken-down account that logged in to see its status.
    Takendown,
    /// A refresh token.
    Refresh,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Access => "com.atproto.access",
            Scope::AppPass => "com.atproto.appPass",
            Scope::AppPassPrivileged => "com.atproto.appPassPrivileged",
            Scope::Takendown => "com.atproto.takendown",
            Scope::Refresh => "com.atproto.refresh",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        [Scope::Access, Scope::AppPass, Scope::AppPassPrivileged, Scope::Takendown, Scope::Refresh]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// Whether this is a full or privileged session (needed for chat and privileged methods).
    pub fn is_privileged(self) -> bool {
        matches!(self, Scope::Access | Scope::AppPassPrivileged)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub scope: String,
    pub aud: String,
    /// Required; a token without one is refused as malformed rather than as unreadable.
    #[serde(default)]
    pub sub: String,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Present only on service-auth tokens; an access token that has it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lxm: Option<String>,
    /// The account's token generation when the token was issued (absent, from before
    /// generations: the first one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The app password the session was opened with.
    #[serde(default, rename = "appPassword", skip_serializing_if = "Option::is_none")]
    pub app_password: Option<String>,
}

/// Who a session token is issued to: the account, its current token generation, and the app
/// password the session was opened with.
#[derive(Clone, Copy, Debug)]
pub struct Holder<'a> {
    pub did: &'a Did,
    pub generation: i64,
    pub app_password: Option<&'a str>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefreshClaims {
    pub scope: String,
    pub aud: String,
    #[serde(default)]
    pub sub: String,
    /// Required; a token without one is refused by name rather than as unreadable.
    #[serde(default)]
    pub jti: String,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
}

/// A freshly issued access and refresh token.
#[derive(Clone, Debug)]
pub struct TokenPair {
    pub access_jwt: String,
    pub refresh_jwt: String,
    pub refresh_id: String,
    pub refresh_expires_at: i64,
}

/// Issues session tokens for this server.
#[derive(Clone)]
pub struct Tokens {
    key: jwt::Hs256Key,
    service_did: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("service_did", &self.service_did).finish_non_exhaustive()
    }
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A new refresh token id: 32 random bytes, unpadded standard base64 (as the reference).
pub fn new_refresh_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    STANDARD_NO_PAD.encode(bytes)
}

impl Tokens {
    /// Keyed with the raw bytes of PDS_JWT_SECRET, as the reference PDS keys them, so tokens
    /// stay valid across a switch between the two.
    pub fn new(secret: &str, service_did: &str) -> Self {
        Self { key: jwt::Hs256Key::new(secret.as_bytes()), service_did: service_did.to_owned() }
    }

    /// The key session and OAuth access tokens are signed with.
    pub fn key(&self) -> &jwt::Hs256Key {
        &self.key
    }

    pub fn service_did(&self) -> &str {
        &self.service_did
    }

    pub fn access(&self, holder: &Holder<'_>, scope: Scope) -> String {
        let iat = now_secs();
        let claims = AccessClaims {
            scope: scope.as_str().to_owned(),
            aud: self.service_did.clone(),
            sub: holder.did.as_str().to_owned(),
            iat,
            exp: Some(iat + ACCESS_LIFETIME_SECS),
            lxm: None,
            generation: Some(holder.generation),
            app_password: holder.app_password.map(str::to_owned),
        };
        jwt::sign_hs256("at+jwt", &claims, &self.key)
    }

    pub fn refresh(&self, did: &Did, jti: &str) -> (String, i64) {
        let iat = now_secs();
        let exp = iat + REFRESH_LIFETIME_SECS;
        let claims = RefreshClaims {
            scope: Scope::Refresh.as_str().to_owned(),
            aud: self.service_did.clone(),
            sub: did.as_str().to_owned(),
            jti: jti.to_owned(),
            iat,
            exp: Some(exp),
        };
        (jwt::sign_hs256("refresh+jwt", &claims, &self.key), exp)
    }

    /// An access token with `scope` and a refresh token with id `refresh_id`.
    pub fn pair(&self, holder: &Holder<'_>, scope: Scope, refresh_id: &str) -> TokenPair {
        let (refresh_jwt, refresh_expires_at) = self.refresh(holder.did, refresh_id);
        TokenPair {
            access_jwt: self.access(holder, scope),
            refresh_jwt,
            refresh_id: refresh_id.to_owned(),
            refresh_expires_at,
        }
    }
}
