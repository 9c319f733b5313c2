//! The browser a person signs in with: a cookie naming a device row and carrying a secret
//! whose hash the row keeps, the accounts signed in on it, and a CSRF token per browser.

use poem::http::{header, HeaderMap, HeaderValue};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};

use aurora_atproto::syntax::Did;

use crate::db::entities::{oauth_device, oauth_device_account};

pub const DEVICE_COOKIE: &str = "aurora-device";
pub const CSRF_COOKIE: &str = "aurora-csrf";
/// A device cookie lasts a year; each visit renews it.
const DEVICE_COOKIE_SECS: i64 = 365 * 24 * 3600;

/// A browser known to the server.
#[derive(Clone, Debug)]
pub struct Device {
    pub id: String,
    /// Set when the cookie is new and must be sent.
    pub new_cookie: Option<String>,
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The request's device, if its cookie names a known one with the right secret.
pub async fn current<C: ConnectionTrait>(conn: &C, headers: &HeaderMap) -> Result<Option<String>, DbErr> {
    let Some((id, secret)) = cookie(headers, DEVICE_COOKIE).and_then(|v| v.split_once(':')) else { return Ok(None) };
    let row = oauth_device::Entity::find_by_id(id.to_owned()).one(conn).await?;
    let matches = row.is_some_and(|row| {
        let expected = hash(secret);
        // Constant-time enough: both are hex digests of equal length.
        expected.len() == row.secret_hash.len()
            && expected.bytes().zip(row.secret_hash.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    });
    Ok(matches.then(|| id.to_owned()))
}

/// The request's device, registering the browser when it has none.
pub async fn current_or_new<C: ConnectionTrait>(
    conn: &C,
    headers: &HeaderMap,
    remote_addr: Option<String>,
    now: i64,
) -> Result<Device, DbErr> {
    if let Some(id) = current(conn, headers).await? {
        oauth_device::Entity::update_many()
            .col_expr(oauth_device::Column::LastSeenAt, now.into())
            .filter(oauth_device::Column::Id.eq(id.clone()))
            .exec(conn)
            .await?;
        return Ok(Device { id, new_cookie: None });
    }
    let id = super::random_id("dev-", 16);
    let secret = super::random_id("", 32);
    let user_agent =
        headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|v| v.chars().take(256).collect());
    let row = oauth_device::ActiveModel {
        id: Set(id.clone()),
        secret_hash: Set(hash(&secret)),
        user_agent: Set(user_agent),
        ip_address: Set(remote_addr),
        last_seen_at: Set(now),
    };
    oauth_device::Entity::insert(row).exec_without_returning(conn).await?;
    Ok(Device { new_cookie: Some(format!("{id}:{secret}")), id })
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure unless the server runs on plain http.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool, path: &str) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub fn device_cookie(value: &str, secure: bool) -> HeaderValue {
    set_cookie(DEVICE_COOKIE, value, DEVICE_COOKIE_SECS, secure, "/")
}

/// Records that `did` signed in with its password on the device now.
pub async fn signed_in<C: ConnectionTrait>(
    conn: &C,
    device_id: &str,
    did: &Did,
    remember: bool,
    now: i64,
) -> Result<(), DbErr> {
    let row = oauth_device_account::ActiveModel {
        device_id: Set(device_id.to_owned()),
        did: Set(did.clone()),
        authenticated_at: Set(now),
        remember: Set(remember),
    };
    oauth_device_account::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([oauth_device_account::Column::DeviceId, oauth_device_account::Column::Did])
                .update_columns([oauth_device_account::Column::AuthenticatedAt, oauth_device_account::Column::Remember])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The accounts signed in on the device recently enough not to be asked for the password.
pub async fn accounts<C: ConnectionTrait>(conn: &C, device_id: &str, now: i64) -> Result<Vec<Did>, DbErr> {
    let rows = oauth_device_account::Entity::find()
        .filter(oauth_device_account::Column::DeviceId.eq(device_id))
        .filter(oauth_device_account::Column::AuthenticatedAt.gte(now - super::SIGN_IN_SECS))
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| r.did).collect())
}

/// Signs `did` out of the device.
pub async fn sign_out<C: ConnectionTrait>(conn: &C, device_id: &str, did: &Did) -> Result<(), DbErr> {
    oauth_device_account::Entity::delete_many()
        .filter(oauth_device_account::Column::DeviceId.eq(device_id))
        .filter(oauth_device_account::Column::Did.eq(did))
        .exec(conn)
        .await?;
    Ok(())
}
