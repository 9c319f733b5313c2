//! An account's hosting status, and the one rule for whether it may change its repository.

use aurora_atproto::syntax::Did;
use poem::http::StatusCode;
use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DbErr};

use crate::db::entities::actor;

use aurora_xrpc::XrpcError;

pub use crate::sequencer::AccountStatus;

/// Why an account may not change its repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the account has been taken down")]
    Takendown,
    #[error("the account is deactivated")]
    Deactivated,
    #[error("there is no such account")]
    NotFound,
}

/// Whether an account of `status` (`None`: there is none) may change its repository. Only an
/// active one may, and a deactivated one too when `deactivated_may` (an account moving here
/// brings its repository and blobs before it is activated).
pub fn writable(status: Option<AccountStatus>, deactivated_may: bool) -> Result<(), Refusal> {
    match status {
        Some(AccountStatus::Active) => Ok(()),
        Some(AccountStatus::Deactivated) if deactivated_may => Ok(()),
        Some(AccountStatus::Takendown | AccountStatus::Suspended) => Err(Refusal::Takendown),
        Some(_) => Err(Refusal::Deactivated),
        None => Err(Refusal::NotFound),
    }
}

/// [`writable`] for `did` as the database has it now.
pub async fn check_writable<C: ConnectionTrait>(
    conn: &C,
    did: &Did,
    deactivated_may: bool,
) -> Result<Result<(), Refusal>, DbErr> {
    let found = super::find_actor(conn, super::Lookup::Did(did)).await?;
    Ok(writable(found.as_ref().map(super::actor_status), deactivated_may))
}

/// The one SQL form of "the account is active", for statements that may only change an active
/// account's repository: `SELECT 1 FROM actor WHERE did = … AND` it is neither taken down,
/// deactivated nor deleted. It says what [`super::actor_status`] says of the row.
pub fn active(did: &Did) -> SelectStatement {
    Query::select()
        .expr(Expr::val(1))
        .from(actor::Entity)
        .and_where(Expr::col((actor::Entity, actor::Column::Did)).eq(did))
        .and_where(Expr::col((actor::Entity, actor::Column::TakedownRef)).is_null())
        .and_where(Expr::col((actor::Entity, actor::Column::DeactivatedAt)).is_null())
        .and_where(Expr::col((actor::Entity, actor::Column::DeletedAt)).is_null())
        .to_owned()
}

/// Whether `did` names a hosted account that is not taken down: what the authentication seam
/// checks on every request to a method marked `+checked`.
pub async fn check_present<C: ConnectionTrait>(conn: &C, did: &Did) -> Result<Result<(), Refusal>, DbErr> {
    Ok(match super::find_actor(conn, super::Lookup::Did(did)).await? {
        None => Err(Refusal::NotFound),
        Some(actor) if actor.takedown_ref.is_some() => Err(Refusal::Takendown),
        Some(_) => Ok(()),
    })
}

impl From<Refusal> for XrpcError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Takendown => {
                XrpcError::new(StatusCode::UNAUTHORIZED, "AccountTakedown", Some("Account has been taken down".into()))
            }
            Refusal::Deactivated => {
                XrpcError::new(StatusCode::UNAUTHORIZED, "AccountDeactivated", Some("Account is deactivated".into()))
            }
            Refusal::NotFound => {
                XrpcError::new(StatusCode::FORBIDDEN, "AccountNotFound", Some("Account not found".into()))
            }
        }
    }
}

/// [`check_writable`], answered as the client sees it.
pub async fn require_writable(
    ctx: &crate::context::AppContext,
    did: &Did,
    deactivated_may: bool,
) -> Result<(), XrpcError> {
    check_writable(&ctx.db, did, deactivated_may).await.map_err(XrpcError::internal)?.map_err(XrpcError::from)
}
