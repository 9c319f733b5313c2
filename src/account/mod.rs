//! Accounts: the actor and account rows, credentials, sessions and app passwords. Reads take
//! any connection; everything that must change together takes a transaction.

pub mod create;
pub mod deletion;
pub mod email;
pub mod email_token;
pub mod handle;
pub mod hash_pool;
pub mod invites;
pub mod password;
pub mod rename;
pub mod status;
pub mod totp;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};

use aurora_atproto::syntax::{AtIdentifier, Did, Handle};

use crate::db::entities::{account, actor, app_password, refresh_token};
use crate::sequencer::AccountStatus;

/// An actor with its credentials, if it has any.
#[derive(Clone, Debug)]
pub struct Account {
    pub actor: actor::Model,
    pub account: Option<account::Model>,
}

impl Account {
    pub fn did(&self) -> &Did {
        &self.actor.did
    }

    /// The handle, or `handle.invalid` when the account has none (as the protocol spells it).
    pub fn handle(&self) -> Handle {
        self.actor.handle.clone().unwrap_or_else(Handle::invalid)
    }

    /// The generation session tokens are issued in now.
    pub fn token_generation(&self) -> i64 {
        self.account.as_ref().map_or(0, |a| a.token_generation)
    }

    pub fn email(&self) -> Option<&str> {
        self.account.as_ref().and_then(|a| a.email.as_deref())
    }

    pub fn email_confirmed(&self) -> bool {
        self.account.as_ref().is_some_and(|a| a.email_confirmed_at.is_some())
    }

    /// Whether a password login also needs a mailed code.
    pub fn email_auth_factor(&self) -> bool {
        self.account.as_ref().is_some_and(|a| a.email_auth_factor)
    }

    pub fn status(&self) -> AccountStatus {
        actor_status(&self.actor)
    }
}

/// An actor's hosting status. Takedown outranks deactivation.
pub fn actor_status(actor: &actor::Model) -> AccountStatus {
    hosting_status(actor.takedown_ref.is_some(), actor.takedown_until.is_some(), actor.deactivated_at.is_some())
}

/// The hosting status of an actor taken down (with an expiry, `until`: suspended) or not,
/// deactivated or not.
pub fn hosting_status(taken_down: bool, until: bool, deactivated: bool) -> AccountStatus {
    match status_of(taken_down, deactivated) {
        AccountStatus::Takendown if until => AccountStatus::Suspended,
        status => status,
    }
}

/// The hosting status of an actor taken down or not, deactivated or not.
pub fn status_of(taken_down: bool, deactivated: bool) -> AccountStatus {
    if taken_down {
        AccountStatus::Takendown
    } else if deactivated {
        AccountStatus::Deactivated
    } else {
        AccountStatus::Active
    }
}

/// How to find an account.
pub enum Lookup<'a> {
    Did(&'a Did),
    Handle(&'a Handle),
    Email(&'a str),
}

/// Finds a hosted account. A deleted account waiting out its grace period is not found: to
/// everything but restoring and purging it, it is gone.
pub async fn find<C: ConnectionTrait>(conn: &C, lookup: Lookup<'_>) -> Result<Option<Account>, DbErr> {
    let live = actor::Entity::find().filter(actor::Column::DeletedAt.is_null());
    let actor = match lookup {
        Lookup::Did(did) => live.filter(actor::Column::Did.eq(did)).one(conn).await?,
        Lookup::Handle(handle) => live.filter(actor::Column::Handle.eq(handle)).one(conn).await?,
        Lookup::Email(email) => {
            let Some(account) =
                account::Entity::find().filter(account::Column::Email.eq(email.to_lowercase())).one(conn).await?
            else {
                return Ok(None);
            };
            return Ok(live
                .filter(actor::Column::Did.eq(&account.did))
                .one(conn)
                .await?
                .map(|actor| Account { actor, account: Some(account) }));
        }
    };
    let Some(actor) = actor else { return Ok(None) };
    let account = account::Entity::find_by_id(actor.did.clone()).one(conn).await?;
    Ok(Some(Account { actor, account }))
}

/// [`find`] by DID, in one point read on the server's reader connections where there are some
/// (the actor and credentials rows joined: through the pool they were two statements, and on
/// SQLite four hand-offs to and from sqlx's thread); else through the pool, as [`find`].
pub async fn find_by_did(
    db: &sea_orm::DatabaseConnection,
    reader: Option<&crate::db::Reader>,
    did: &Did,
) -> Result<Option<Account>, DbErr> {
    // `$1` is a positional parameter to PostgreSQL and the first named one to SQLite.
    const SQL: &str = "SELECT a.handle, a.created_at, a.deactivated_at, a.delete_after, a.takedown_ref, \
        a.takedown_until, a.deleted_at, c.did, c.email, c.email_confirmed_at, c.password_hash, c.invites_disabled, \
        c.email_auth_factor, c.token_generation \
        FROM actor a LEFT JOIN account c ON c.did = a.did WHERE a.did = $1 AND a.deleted_at IS NULL";
    if reader.is_none() {
        return find(db, Lookup::Did(did)).await;
    }
    // Both read the columns by position, in SQL's order.
    let on_reader = |row: &rusqlite::Row<'_>| {
        let handle: Option<String> = row.get(0)?;
        let malformed = |_| rusqlite::Error::InvalidColumnType(0, "handle".into(), rusqlite::types::Type::Text);
        let actor = actor::Model {
            did: did.clone(),
            handle: handle.map(|handle| handle.parse()).transpose().map_err(malformed)?,
            created_at: row.get(1)?,
            deactivated_at: row.get(2)?,
            delete_after: row.get(3)?,
            takedown_ref: row.get(4)?,
            takedown_until: row.get(5)?,
            deleted_at: row.get(6)?,
        };
        let account = match row.get::<_, Option<String>>(7)? {
            None => None,
            Some(_) => Some(account::Model {
                did: did.clone(),
                email: row.get(8)?,
                email_confirmed_at: row.get(9)?,
                password_hash: row.get(10)?,
                invites_disabled: row.get(11)?,
                email_auth_factor: row.get(12)?,
                token_generation: row.get(13)?,
            }),
        };
        Ok(Account { actor, account })
    };
    let on_pool = |row: &sea_orm::QueryResult| {
        let handle = match row.try_get_by_index::<Option<String>>(0)? {
            Some(text) => Some(text.parse().map_err(|_| crate::repo::records::malformed("handle", &text))?),
            None => None,
        };
        let actor = actor::Model {
            did: did.clone(),
            handle,
            created_at: row.try_get_by_index(1)?,
            deactivated_at: row.try_get_by_index(2)?,
            delete_after: row.try_get_by_index(3)?,
            takedown_ref: row.try_get_by_index(4)?,
            takedown_until: row.try_get_by_index(5)?,
            deleted_at: row.try_get_by_index(6)?,
        };
        let account = match row.try_get_by_index::<Option<String>>(7)? {
            None => None,
            Some(_) => Some(account::Model {
                did: did.clone(),
                email: row.try_get_by_index(8)?,
                email_confirmed_at: row.try_get_by_index(9)?,
                password_hash: row.try_get_by_index(10)?,
                invites_disabled: row.try_get_by_index(11)?,
                email_auth_factor: row.try_get_by_index(12)?,
                token_generation: row.try_get_by_index(13)?,
            }),
        };
        Ok(Account { actor, account })
    };
    crate::db::point_read(db, reader, |_| SQL, &[did.as_str()], on_reader, on_pool).await
}

/// The actor row alone of a hosted account, found by DID or handle (one read, for hot paths
/// that need no credentials); a deleted account waiting out its grace period is not found.
pub async fn find_actor<C: ConnectionTrait>(conn: &C, lookup: Lookup<'_>) -> Result<Option<actor::Model>, DbErr> {
    let live = actor::Entity::find().filter(actor::Column::DeletedAt.is_null());
    match lookup {
        Lookup::Did(did) => live.filter(actor::Column::Did.eq(did)).one(conn).await,
        Lookup::Handle(handle) => live.filter(actor::Column::Handle.eq(handle)).one(conn).await,
        Lookup::Email(_) => Ok(find(conn, lookup).await?.map(|a| a.actor)),
    }
}

/// Finds by DID or handle, whichever `identifier` is.
pub async fn find_by_identifier<C: ConnectionTrait>(
    conn: &C,
    identifier: &AtIdentifier,
) -> Result<Option<Account>, DbErr> {
    match identifier {
        AtIdentifier::Did(did) => find(conn, Lookup::Did(did)).await,
        AtIdentifier::Handle(handle) => find(conn, Lookup::Handle(handle)).await,
    }
}

pub async fn handle_taken<C: ConnectionTrait>(conn: &C, handle: &Handle) -> Result<bool, DbErr> {
    Ok(actor::Entity::find().filter(actor::Column::Handle.eq(handle)).one(conn).await?.is_some())
}

pub async fn email_taken<C: ConnectionTrait>(conn: &C, email: &str) -> Result<bool, DbErr> {
    Ok(account::Entity::find().filter(account::Column::Email.eq(email.to_lowercase())).one(conn).await?.is_some())
}

/// The rows of a new account.
pub struct NewAccount<'a> {
    pub did: &'a Did,
    pub handle: &'a Handle,
    pub email: Option<&'a str>,
    pub password_hash: Option<String>,
    pub deactivated: bool,
}

pub async fn insert<C: ConnectionTrait>(conn: &C, new: NewAccount<'_>) -> Result<(), DbErr> {
    let now = now();
    actor::Entity::insert(actor::ActiveModel {
        did: Set(new.did.clone()),
        handle: Set(Some(new.handle.clone())),
        created_at: Set(now.clone()),
        deactivated_at: Set(new.deactivated.then(|| now.clone())),
        delete_after: Set(None),
        deleted_at: Set(None),
        takedown_ref: Set(None),
        takedown_until: Set(None),
    })
    .exec_without_returning(conn)
    .await?;
    if let Some(password_hash) = new.password_hash {
        account::Entity::insert(account::ActiveModel {
            did: Set(new.did.clone()),
            email: Set(new.email.map(str::to_lowercase)),
            email_confirmed_at: Set(None),
            password_hash: Set(password_hash),
            invites_disabled: Set(false),
            email_auth_factor: Set(false),
            token_generation: Set(0),
        })
        .exec_without_returning(conn)
        .await?;
    }
    Ok(())
}

pub fn now() -> String {
    aurora_atproto::syntax::Datetime::now().as_str().to_owned()
}

/// The time `secs` seconds from now.
pub fn iso_after_secs(secs: i64) -> String {
    let now = aurora_atproto::syntax::Datetime::now().unix_micros();
    aurora_atproto::syntax::Datetime::from_unix_micros(now.saturating_add(secs.saturating_mul(1_000_000)))
        .as_str()
        .to_owned()
}

fn iso_from_secs(secs: i64) -> String {
    aurora_atproto::syntax::Datetime::from_unix_micros(secs.saturating_mul(1_000_000)).as_str().to_owned()
}

/// Records a refresh token so that it can be rotated and revoked.
pub async fn store_refresh_token<C: ConnectionTrait>(
    conn: &C,
    did: &Did,
    id: &str,
    expires_at_secs: i64,
    app_password_name: Option<&str>,
) -> Result<(), DbErr> {
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        id: Set(id.to_owned()),
        did: Set(did.clone()),
        expires_at: Set(iso_from_secs(expires_at_secs)),
        app_password_name: Set(app_password_name.map(str::to_owned)),
        next_id: Set(None),
    })
    .on_conflict(OnConflict::column(refresh_token::Column::Id).do_nothing().to_owned())
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

pub async fn refresh_token<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<refresh_token::Model>, DbErr> {
    refresh_token::Entity::find_by_id(id.to_owned()).one(conn).await
}

/// How long a rotated refresh token keeps working, so that a client whose refresh response was
/// lost can retry (it then receives the same successor).
pub const REFRESH_GRACE_SECS: i64 = 2 * 60 * 60;

/// Marks `old` as rotated to `next_id`, shortening its life to the grace period. Returns false
/// when another refresh rotated it to a different successor first.
pub async fn rotate_refresh_token<C: ConnectionTrait>(
    conn: &C,
    old: &refresh_token::Model,
    next_id: &str,
    grace_expires_at: &str,
) -> Result<bool, DbErr> {
    let result = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::ExpiresAt, Expr::value(grace_expires_at.to_owned()))
        .col_expr(refresh_token::Column::NextId, Expr::value(next_id.to_owned()))
        .filter(refresh_token::Column::Id.eq(old.id.as_str()))
        .filter(
            Condition::any()
                .add(refresh_token::Column::NextId.is_null())
                .add(refresh_token::Column::NextId.eq(next_id)),
        )
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Gives the account a new password hash and ends its password sessions, which were opened
/// with the old one.
pub async fn set_password<C: ConnectionTrait>(conn: &C, did: &Did, hash: String) -> Result<(), DbErr> {
    use sea_orm::sea_query::Expr;
    account::Entity::update_many()
        .col_expr(account::Column::PasswordHash, Expr::value(hash))
        // Access tokens from before stop too, not only the refresh tokens deleted below.
        .col_expr(account::Column::TokenGeneration, Expr::col(account::Column::TokenGeneration).add(1))
        .filter(account::Column::Did.eq(did))
        .exec(conn)
        .await?;
    refresh_token::Entity::delete_many().filter(refresh_token::Column::Did.eq(did)).exec(conn).await?;
    Ok(())
}

/// The account's password sessions (refresh tokens), newest expiry first.
pub async fn refresh_tokens<C: ConnectionTrait>(conn: &C, did: &Did) -> Result<Vec<refresh_token::Model>, DbErr> {
    refresh_token::Entity::find()
        .filter(refresh_token::Column::Did.eq(did))
        .order_by_desc(refresh_token::Column::ExpiresAt)
        .all(conn)
        .await
}

pub async fn delete_refresh_token<C: ConnectionTrait>(conn: &C, id: &str) -> Result<(), DbErr> {
    refresh_token::Entity::delete_by_id(id.to_owned()).exec(conn).await.map(|_| ())
}

pub async fn delete_expired_refresh_tokens<C: ConnectionTrait>(conn: &C, did: &Did) -> Result<(), DbErr> {
    refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::Did.eq(did))
        .filter(refresh_token::Column::ExpiresAt.lte(now()))
        .exec(conn)
        .await
        .map(|_| ())
}

pub async fn app_passwords<C: ConnectionTrait>(conn: &C, did: &Did) -> Result<Vec<app_password::Model>, DbErr> {
    app_password::Entity::find()
        .filter(app_password::Column::Did.eq(did))
        .order_by_desc(app_password::Column::CreatedAt)
        .all(conn)
        .await
}

pub async fn app_password_by_hash<C: ConnectionTrait>(
    conn: &C,
    did: &Did,
    hash: &str,
) -> Result<Option<app_password::Model>, DbErr> {
    app_password::Entity::find()
        .filter(app_password::Column::Did.eq(did))
        .filter(app_password::Column::PasswordHash.eq(hash))
        .one(conn)
        .await
}

pub async fn app_password<C: ConnectionTrait>(
    conn: &C,
    did: &Did,
    name: &str,
) -> Result<Option<app_password::Model>, DbErr> {
    app_password::Entity::find_by_id((did.clone(), name.to_owned())).one(conn).await
}

pub async fn insert_app_password<C: ConnectionTrait>(conn: &C, row: app_password::Model) -> Result<(), DbErr> {
    app_password::Entity::insert(app_password::ActiveModel {
        did: Set(row.did),
        name: Set(row.name),
        password_hash: Set(row.password_hash),
        privileged: Set(row.privileged),
        created_at: Set(row.created_at),
    })
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

/// Deletes an app password and every session opened with it.
pub async fn revoke_app_password<C: ConnectionTrait>(conn: &C, did: &Did, name: &str) -> Result<(), DbErr> {
    app_password::Entity::delete_by_id((did.clone(), name.to_owned())).exec(conn).await?;
    refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::Did.eq(did))
        .filter(refresh_token::Column::AppPasswordName.eq(name))
        .exec(conn)
        .await
        .map(|_| ())
}
