//! OAuth sessions: the grant an authorization code starts, with its current access token id and
//! refresh token. Refreshing rotates both; a refresh token used before ends the session.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};

use aurora_atproto::syntax::Did;

use crate::db::entities::{oauth_session, oauth_used_refresh_token};

/// What a session starts with.
pub struct NewSession {
    pub did: Did,
    pub client_id: String,
    pub client_auth: String,
    pub device_id: Option<String>,
    pub dpop_jkt: String,
    pub scope: String,
    pub parameters: String,
    pub code: Option<String>,
}

pub fn new_token_id() -> String {
    super::random_id("tok-", 16)
}

pub fn new_refresh_token() -> String {
    super::random_id("ref-", 32)
}

pub async fn create<C: ConnectionTrait>(
    conn: &C,
    new: NewSession,
    now: i64,
    expires_at: i64,
) -> Result<oauth_session::Model, DbErr> {
    let row = oauth_session::Model {
        id: super::random_id("ses-", 16),
        token_id: new_token_id(),
        did: new.did,
        client_id: new.client_id,
        client_auth: new.client_auth,
        device_id: new.device_id,
        dpop_jkt: new.dpop_jkt,
        scope: new.scope,
        parameters: new.parameters,
        code: new.code,
        refresh_token: Some(new_refresh_token()),
        created_at: now,
        updated_at: now,
        expires_at,
    };
    let active: oauth_session::ActiveModel = row.clone().into();
    oauth_session::Entity::insert(active).exec_without_returning(conn).await?;
    Ok(row)
}

pub async fn by_token_id<C: ConnectionTrait>(conn: &C, token_id: &str) -> Result<Option<oauth_session::Model>, DbErr> {
    oauth_session::Entity::find().filter(oauth_session::Column::TokenId.eq(token_id)).one(conn).await
}

/// What a presented refresh token is.
pub enum Refresh {
    Current(Box<oauth_session::Model>),
    /// Exchanged before: its session must end.
    Used(String),
    Unknown,
}

pub async fn by_refresh_token<C: ConnectionTrait>(conn: &C, token: &str) -> Result<Refresh, DbErr> {
    if let Some(session) =
        oauth_session::Entity::find().filter(oauth_session::Column::RefreshToken.eq(token)).one(conn).await?
    {
        return Ok(Refresh::Current(Box::new(session)));
    }
    Ok(match oauth_used_refresh_token::Entity::find_by_id(token.to_owned()).one(conn).await? {
        Some(used) => Refresh::Used(used.session_id),
        None => Refresh::Unknown,
    })
}

/// Gives the session a new access token id and refresh token, remembering the old refresh
/// token as used; `None` when another refresh got there first.
pub async fn rotate<C: ConnectionTrait>(
    conn: &C,
    session: &oauth_session::Model,
    scope: &str,
    now: i64,
    expires_at: i64,
) -> Result<Option<oauth_session::Model>, DbErr> {
    let Some(old) = &session.refresh_token else { return Ok(None) };
    let token_id = new_token_id();
    let refresh_token = new_refresh_token();
    let updated = oauth_session::Entity::update_many()
        .col_expr(oauth_session::Column::TokenId, Expr::value(token_id.clone()))
        .col_expr(oauth_session::Column::RefreshToken, Expr::value(refresh_token.clone()))
        .col_expr(oauth_session::Column::Scope, Expr::value(scope))
        .col_expr(oauth_session::Column::UpdatedAt, Expr::value(now))
        .col_expr(oauth_session::Column::ExpiresAt, Expr::value(expires_at))
        .filter(oauth_session::Column::Id.eq(session.id.clone()))
        .filter(oauth_session::Column::RefreshToken.eq(old.clone()))
        .exec(conn)
        .await?;
    if updated.rows_affected != 1 {
        return Ok(None);
    }
    let used =
        oauth_used_refresh_token::ActiveModel { refresh_token: Set(old.clone()), session_id: Set(session.id.clone()) };
    oauth_used_refresh_token::Entity::insert(used).exec_without_returning(conn).await?;
    Ok(Some(oauth_session::Model {
        token_id,
        refresh_token: Some(refresh_token),
        scope: scope.to_owned(),
        updated_at: now,
        expires_at,
        ..session.clone()
    }))
}

pub async fn delete<C: ConnectionTrait>(conn: &C, session_id: &str) -> Result<(), DbErr> {
    oauth_used_refresh_token::Entity::delete_many()
        .filter(oauth_used_refresh_token::Column::SessionId.eq(session_id))
        .exec(conn)
        .await?;
    oauth_session::Entity::delete_by_id(session_id.to_owned()).exec(conn).await?;
    Ok(())
}

/// Ends the session an authorization code started, if one did (the code is being replayed).
pub async fn delete_by_code<C: ConnectionTrait>(conn: &C, code: &str) -> Result<(), DbErr> {
    if let Some(session) = oauth_session::Entity::find().filter(oauth_session::Column::Code.eq(code)).one(conn).await? {
        delete(conn, &session.id).await?;
    }
    Ok(())
}

/// An account's sessions, newest first.
pub async fn for_account<C: ConnectionTrait>(conn: &C, did: &Did) -> Result<Vec<oauth_session::Model>, DbErr> {
    oauth_session::Entity::find()
        .filter(oauth_session::Column::Did.eq(did))
        .order_by_desc(oauth_session::Column::UpdatedAt)
        .all(conn)
        .await
}

/// Ends every session of `did` with `client_id` (revoking an app).
pub async fn delete_for_client<C: ConnectionTrait>(conn: &C, did: &Did, client_id: &str) -> Result<(), DbErr> {
    let sessions = oauth_session::Entity::find()
        .filter(oauth_session::Column::Did.eq(did))
        .filter(oauth_session::Column::ClientId.eq(client_id))
        .all(conn)
        .await?;
    for session in sessions {
        delete(conn, &session.id).await?;
    }
    Ok(())
}
