//! Sweeps of rows that can no longer be used.

use sea_orm::{ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

use crate::db::entities::{email_token, oauth_session, refresh_token};

/// The most DID documents kept cached.
pub const MAX_CACHED_DID_DOCS: u64 = 50_000;

/// Removes sessions that can no longer be renewed: password sessions past their refresh
/// token's expiry, and OAuth sessions past their lifetime or unrefreshed for longer than a
/// refresh token lasts (a public client's shorter limits for sessions it started without
/// client authentication; the longest ones for the rest). How many went.
pub async fn sweep_expired_sessions(db: &DatabaseConnection) -> Result<u64, DbErr> {
    use crate::oauth::{
        CONFIDENTIAL_REFRESH_SECS, CONFIDENTIAL_SESSION_SECS, PUBLIC_REFRESH_SECS, PUBLIC_SESSION_SECS,
    };
    let now = crate::account::now();
    let sessions = refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::ExpiresAt.lte(now.as_str()))
        .exec(db)
        .await?;
    let now = crate::oauth::now();
    let ended = |session_secs: i64, refresh_secs: i64| {
        Condition::any()
            .add(oauth_session::Column::CreatedAt.lt(now - session_secs))
            .add(oauth_session::Column::UpdatedAt.lt(now - refresh_secs))
    };
    let public = Condition::all()
        .add(oauth_session::Column::ClientAuth.eq(PUBLIC_CLIENT_AUTH))
        .add(ended(PUBLIC_SESSION_SECS, PUBLIC_REFRESH_SECS));
    let any = ended(CONFIDENTIAL_SESSION_SECS, CONFIDENTIAL_REFRESH_SECS);
    let grants = oauth_session::Entity::delete_many().filter(Condition::any().add(public).add(any)).exec(db).await?;
    Ok(sessions.rows_affected + grants.rows_affected)
}

/// How a session started without client authentication stores its client authentication.
const PUBLIC_CLIENT_AUTH: &str = r#"{"method":"none"}"#;

/// Removes mailed codes older than their lifetime. How many went.
pub async fn sweep_expired_codes(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let spent = crate::account::iso_after_secs(-crate::account::email_token::LIFETIME_SECS);
    let codes = email_token::Entity::delete_many().filter(email_token::Column::RequestedAt.lte(spent)).exec(db).await?;
    Ok(codes.rows_affected)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_public_session_stores_its_client_authentication_as_the_sweep_expects() {
        let stored = serde_json::to_string(&crate::oauth::client::ClientAuth::None).expect("json");
        assert_eq!(stored, super::PUBLIC_CLIENT_AUTH);
    }
}
