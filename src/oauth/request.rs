//! Stored authorization requests: created by PAR, opened by the authorize page, given a code
//! on consent, consumed by the token endpoint.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};

use aurora_atproto::syntax::Did;

use super::client::ClientAuth;
use crate::db::entities::oauth_request;

/// The `request_uri` prefix RFC 9126 gives.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// How the code goes back to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// A request's parameters once validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameters {
    pub client_id: String,
    pub redirect_uri: String,
    /// The requested scope: the valid tokens as the client spelled them.
    pub scope: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub response_mode: ResponseMode,
    pub login_hint: Option<String>,
    pub prompt: Option<String>,
}

/// A stored request with its parameters decoded.
pub struct Request {
    pub row: oauth_request::Model,
    pub parameters: Parameters,
    pub client_auth: ClientAuth,
}

/// The id inside a `request_uri`, if it is one of ours.
pub fn id_of(request_uri: &str) -> Option<&str> {
    let id = request_uri.strip_prefix(REQUEST_URI_PREFIX)?;
    let hex = id.strip_prefix("req-")?;
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

pub async fn create<C: ConnectionTrait>(
    conn: &C,
    parameters: &Parameters,
    client_auth: &ClientAuth,
    dpop_jkt: Option<String>,
    expires_at: i64,
) -> Result<String, DbErr> {
    let id = super::random_id("req-", 16);
    let row = oauth_request::ActiveModel {
        id: Set(id.clone()),
        client_id: Set(parameters.client_id.clone()),
        client_auth: Set(serde_json::to_string(client_auth).map_err(|e| DbErr::Custom(e.to_string()))?),
        parameters: Set(serde_json::to_string(parameters).map_err(|e| DbErr::Custom(e.to_string()))?),
        dpop_jkt: Set(dpop_jkt),
        expires_at: Set(expires_at),
        device_id: Set(None),
        did: Set(None),
        code: Set(None),
    };
    oauth_request::Entity::insert(row).exec_without_returning(conn).await?;
    Ok(format!("{REQUEST_URI_PREFIX}{id}"))
}

fn decode(row: oauth_request::Model) -> Result<Request, DbErr> {
    let parameters = serde_json::from_str(&row.parameters).map_err(|e| DbErr::Custom(e.to_string()))?;
    let client_auth = serde_json::from_str(&row.client_auth).map_err(|e| DbErr::Custom(e.to_string()))?;
    Ok(Request { row, parameters, client_auth })
}

pub async fn find<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<Request>, DbErr> {
    oauth_request::Entity::find_by_id(id.to_owned()).one(conn).await?.map(decode).transpose()
}

/// Binds the request to the browser that opened it and extends its life.
pub async fn open<C: ConnectionTrait>(conn: &C, id: &str, device_id: &str, expires_at: i64) -> Result<(), DbErr> {
    oauth_request::Entity::update_many()
        .col_expr(oauth_request::Column::DeviceId, device_id.into())
        .col_expr(oauth_request::Column::ExpiresAt, expires_at.into())
        .filter(oauth_request::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Records the account's consent and the code that stands for it; false when the request was
/// already authorized (or is gone).
pub async fn authorize<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    did: &Did,
    code: &str,
    parameters: &Parameters,
    expires_at: i64,
) -> Result<bool, DbErr> {
    let parameters = serde_json::to_string(parameters).map_err(|e| DbErr::Custom(e.to_string()))?;
    let updated = oauth_request::Entity::update_many()
        .col_expr(oauth_request::Column::Did, sea_orm::sea_query::Expr::value(did.as_str()))
        .col_expr(oauth_request::Column::Code, code.into())
        .col_expr(oauth_request::Column::Parameters, parameters.into())
        .col_expr(oauth_request::Column::ExpiresAt, expires_at.into())
        .filter(oauth_request::Column::Id.eq(id))
        .filter(oauth_request::Column::Code.is_null())
        .exec(conn)
        .await?;
    Ok(updated.rows_affected == 1)
}

pub async fn delete<C: ConnectionTrait>(conn: &C, id: &str) -> Result<(), DbErr> {
    oauth_request::Entity::delete_by_id(id.to_owned()).exec(conn).await?;
    Ok(())
}

/// Takes the request a code was issued for, so the code cannot be used twice.
pub async fn take_code<C: ConnectionTrait>(conn: &C, code: &str) -> Result<Option<Request>, DbErr> {
    let Some(row) = oauth_request::Entity::find().filter(oauth_request::Column::Code.eq(code)).one(conn).await? else {
        return Ok(None);
    };
    let deleted = oauth_request::Entity::delete_many()
        .filter(oauth_request::Column::Id.eq(row.id.clone()))
        .filter(oauth_request::Column::Code.eq(code))
        .exec(conn)
        .await?;
    if deleted.rows_affected != 1 {
        return Ok(None);
    }
    decode(row).map(Some)
}

/// Drops requests that expired.
pub async fn purge_expired<C: ConnectionTrait>(conn: &C, now: i64) -> Result<(), DbErr> {
    oauth_request::Entity::delete_many().filter(oauth_request::Column::ExpiresAt.lt(now)).exec(conn).await?;
    Ok(())
}
