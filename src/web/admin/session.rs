//! The dashboard's sign-in: a cookie holding the operator's role, an expiry and a random id,
//! signed with a key derived from the JWT secret and the role's current password, so that
//! changing a password ends every dashboard session opened with it and replicas sharing the
//! secret accept each other's cookies. Forms carry a CSRF token derived from the session.

use hmac::{Hmac, Mac};
use poem::http::{header, HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use aurora_xrpc::auth::{Admin, Operator, Role};

use crate::auth::constant_time_eq;
use crate::context::AppContext;
use crate::oauth::device;

pub const COOKIE: &str = "aurora-admin";
/// How long a dashboard session lasts.
pub const LIFETIME_SECS: i64 = 8 * 3600;

/// A signed-in operator.
#[derive(Clone, Debug)]
pub struct Session {
    pub admin: Admin,
    id: String,
}

impl Session {
    /// The token every form of this session carries.
    pub fn csrf(&self, ctx: &AppContext) -> String {
        key(ctx, self.admin.role)
            .map(|k| hex::encode(&sign(&k, &format!("csrf:{}", self.id))[..16]))
            .unwrap_or_default()
    }

    pub fn csrf_ok(&self, ctx: &AppContext, token: Option<&str>) -> bool {
        token.is_some_and(|t| constant_time_eq(t.as_bytes(), self.csrf(ctx).as_bytes()))
    }
}

fn password_of(ctx: &AppContext, role: Role) -> Option<&str> {
    match role {
        Role::Admin => Some(ctx.config.admin_password.expose()),
        Role::Moderator => ctx.config.moderator_password.as_ref().map(|p| p.expose()),
    }
}

fn key(ctx: &AppContext, role: Role) -> Option<Vec<u8>> {
    let password = password_of(ctx, role)?;
    let mut hasher = Sha256::new();
    hasher.update(b"aurora admin dashboard\0");
    hasher.update(ctx.config.jwt_secret.expose().as_bytes());
    hasher.update(b"\0");
    hasher.update(password.as_bytes());
    Some(hasher.finalize().to_vec())
}

fn sign(key: &[u8], text: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(text.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Moderator => "moderator",
    }
}

/// The operator whose password `password` is, for the user name `user`.
pub fn check_password(ctx: &AppContext, user: &str, password: &str) -> Option<Admin> {
    let role = match user {
        "admin" => Role::Admin,
        "moderator" => Role::Moderator,
        _ => return None,
    };
    let expected = password_of(ctx, role)?;
    constant_time_eq(password.as_bytes(), expected.as_bytes()).then(|| admin_of(role))
}

fn admin_of(role: Role) -> Admin {
    match role {
        Role::Admin => Admin::ROOT,
        Role::Moderator => Admin { role, operator: Operator::ModeratorPassword },
    }
}

/// A new session's cookie.
pub fn open(ctx: &AppContext, admin: &Admin) -> Option<HeaderValue> {
    let expires = crate::oauth::now() + LIFETIME_SECS;
    let payload = format!("{}.{expires}.{}", role_name(admin.role), crate::oauth::random_id("", 16));
    let signature = hex::encode(sign(&key(ctx, admin.role)?, &payload));
    cookie(ctx, &format!("{payload}.{signature}"), LIFETIME_SECS)
}

/// The cookie that ends the session.
pub fn close(ctx: &AppContext) -> Option<HeaderValue> {
    cookie(ctx, "", 0)
}

fn cookie(ctx: &AppContext, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if ctx.config.public_url.starts_with("https://") { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/admin; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .ok()
}

/// The session the request's cookie proves, if it does and has not run out.
pub fn current(ctx: &AppContext, headers: &HeaderMap) -> Option<Session> {
    let value = device::cookie(headers, COOKIE)?;
    let (payload, signature) = value.rsplit_once('.')?;
    let mut parts = payload.split('.');
    let (role, expires, id) = (parts.next()?, parts.next()?, parts.next()?);
    let role = match role {
        "admin" => Role::Admin,
        "moderator" => Role::Moderator,
        _ => return None,
    };
    let expected = hex::encode(sign(&key(ctx, role)?, payload));
    if !constant_time_eq(signature.as_bytes(), expected.as_bytes()) {
        return None;
    }
    if expires.parse::<i64>().ok()? <= crate::oauth::now() {
        return None;
    }
    Some(Session { admin: admin_of(role), id: id.to_owned() })
}

/// Whether a form post comes from a page of this server (browsers send `Origin` on posts).
pub fn same_origin(ctx: &AppContext, headers: &HeaderMap) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let public = ctx.config.public_url.trim_end_matches('/');
    origin.is_none_or(|o| o == public)
}
