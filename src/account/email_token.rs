//! One-time codes mailed to an account: `XXXXX-XXXXX`, one live code per purpose, valid for 15
//! minutes, compared without regard to case.

use aurora_atproto::syntax::Did;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

use crate::db::entities::email_token;
use crate::mail::Purpose;

pub const LIFETIME_SECS: i64 = 15 * 60;
/// A new code for the same purpose is refused this soon after the last one, so a script cannot
/// flood someone's inbox.
pub const MIN_INTERVAL_SECS: i64 = 30;
/// Wrong guesses a code survives; the next spends it.
pub const MAX_ATTEMPTS: i32 = 5;

#[derive(Debug, PartialEq, Eq)]
pub enum TokenProblem {
    Invalid,
    Expired,
    TooSoon,
}

fn new_code() -> String {
    let raw = super::password::random_base32(10).to_uppercase();
    format!("{}-{}", &raw[..5], &raw[5..])
}

fn secs(iso: &str) -> i64 {
    iso.parse::<aurora_atproto::syntax::Datetime>().map(|d| d.unix_micros() / 1_000_000).unwrap_or(0)
}

/// Issues a fresh code for `purpose`, replacing any earlier one.
pub async fn create<C: ConnectionTrait>(
    conn: &C,
    did: &Did,
    purpose: Purpose,
) -> Result<Result<String, TokenProblem>, DbErr> {
    if let Some(existing) =
        email_token::Entity::find_by_id((purpose.as_str().to_owned(), did.clone())).one(conn).await?
    {
        if crate::auth::now_secs() - secs(&existing.requested_at) < MIN_INTERVAL_SECS {
            return Ok(Err(TokenProblem::TooSoon));
        }
    }
    let token = new_code();
    email_token::Entity::insert(email_token::ActiveModel {
        purpose: Set(purpose.as_str().to_owned()),
        did: Set(did.clone()),
        token: Set(token.clone()),
        requested_at: Set(super::now()),
        attempts: Set(0),
    })
    .on_conflict(
        OnConflict::columns([email_token::Column::Purpose, email_token::Column::Did])
            .update_columns([
                email_token::Column::Token,
                email_token::Column::RequestedAt,
                email_token::Column::Attempts,
            ])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(Ok(token))
}

fn check(row: Option<email_token::Model>) -> Result<email_token::Model, TokenProblem> {
    let row = row.ok_or(TokenProblem::Invalid)?;
    if crate::auth::now_secs() - secs(&row.requested_at) > LIFETIME_SECS {
        return Err(TokenProblem::Expired);
    }
    Ok(row)
}

/// Checks `token` for `did` and `purpose`; does not consume it. A wrong guess is counted, and
/// the code is spent after [`MAX_ATTEMPTS`] of them, so guessing cannot outlast a code. The
/// count goes through `counter`, outside the caller's transaction (which a wrong code rolls
/// back).
pub async fn verify<C: ConnectionTrait>(
    conn: &C,
    counter: &sea_orm::DatabaseConnection,
    did: &Did,
    purpose: Purpose,
    token: &str,
) -> Result<Result<(), TokenProblem>, DbErr> {
    let key = (purpose.as_str().to_owned(), did.clone());
    let Some(row) = email_token::Entity::find_by_id(key.clone()).one(conn).await? else {
        return Ok(Err(TokenProblem::Invalid));
    };
    let guess = token.trim().to_uppercase();
    if !crate::auth::constant_time_eq(guess.as_bytes(), row.token.as_bytes()) {
        if row.attempts + 1 >= MAX_ATTEMPTS {
            email_token::Entity::delete_by_id(key).exec(counter).await?;
        } else {
            email_token::Entity::update_many()
                .col_expr(
                    email_token::Column::Attempts,
                    sea_orm::sea_query::Expr::col(email_token::Column::Attempts).add(1),
                )
                .filter(email_token::Column::Purpose.eq(purpose.as_str()))
                .filter(email_token::Column::Did.eq(did))
                .exec(counter)
                .await?;
        }
        return Ok(Err(TokenProblem::Invalid));
    }
    Ok(check(Some(row)).map(|_| ()))
}

/// The account a code for `purpose` belongs to (password resets carry no other identification).
pub async fn find_did<C: ConnectionTrait>(
    conn: &C,
    purpose: Purpose,
    token: &str,
) -> Result<Result<Did, TokenProblem>, DbErr> {
    let row = email_token::Entity::find()
        .filter(email_token::Column::Purpose.eq(purpose.as_str()))
        .filter(email_token::Column::Token.eq(token.trim().to_uppercase()))
        .one(conn)
        .await?;
    Ok(check(row).map(|r| r.did))
}

pub async fn consume<C: ConnectionTrait>(conn: &C, did: &Did, purpose: Purpose) -> Result<(), DbErr> {
    email_token::Entity::delete_by_id((purpose.as_str().to_owned(), did.clone())).exec(conn).await.map(|_| ())
}

pub async fn delete_all<C: ConnectionTrait>(conn: &C, did: &Did) -> Result<(), DbErr> {
    email_token::Entity::delete_many().filter(email_token::Column::Did.eq(did)).exec(conn).await.map(|_| ())
}
