//! The accounts operators look at: one account with its invites, searches, and the invite
//! codes the server has issued.

use sea_orm::sea_query::{Expr, Func, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use aurora_atproto::syntax::Did;

use crate::account::invites;
use crate::db::entities::{account, actor, invite_code, invite_code_use};

/// An invite code and its uses (newest first).
pub type Invite = (invite_code::Model, Vec<invite_code_use::Model>);

/// One account as an operator sees it.
pub struct Info {
    pub actor: actor::Model,
    pub account: Option<account::Model>,
    /// The codes issued to it.
    pub invites: Vec<Invite>,
    /// The code it signed up with.
    pub invited_by: Option<Invite>,
}

/// The accounts `dids` names that exist (deleted ones excepted), in the order asked.
pub async fn infos<C: ConnectionTrait>(conn: &C, dids: &[Did]) -> Result<Vec<Info>, DbErr> {
    let actors = actor::Entity::find()
        .filter(actor::Column::Did.is_in(dids.iter().cloned()))
        .filter(actor::Column::DeletedAt.is_null())
        .all(conn)
        .await?;
    let mut out = Vec::with_capacity(actors.len());
    for did in dids {
        let Some(found) = actors.iter().find(|a| &a.did == did) else { continue };
        if out.iter().any(|i: &Info| &i.actor.did == did) {
            continue;
        }
        out.push(info(conn, found.clone()).await?);
    }
    Ok(out)
}

async fn info<C: ConnectionTrait>(conn: &C, actor: actor::Model) -> Result<Info, DbErr> {
    let account = account::Entity::find_by_id(actor.did.clone()).one(conn).await?;
    let invites = invites::for_account(conn, actor.did.as_str()).await?;
    let used = invite_code_use::Entity::find().filter(invite_code_use::Column::UsedBy.eq(&actor.did)).one(conn).await?;
    let invited_by = match used {
        Some(used) => invite(conn, &used.code).await?,
        None => None,
    };
    Ok(Info { actor, account, invites, invited_by })
}

/// One invite code with its uses.
pub async fn invite<C: ConnectionTrait>(conn: &C, code: &str) -> Result<Option<Invite>, DbErr> {
    let Some(row) = invite_code::Entity::find_by_id(code.to_owned()).one(conn).await? else { return Ok(None) };
    let uses = invite_code_use::Entity::find()
        .filter(invite_code_use::Column::Code.eq(code))
        .order_by_desc(invite_code_use::Column::UsedAt)
        .all(conn)
        .await?;
    Ok(Some((row, uses)))
}

/// What to look for.
#[derive(Default)]
pub struct Search<'a> {
    /// Part of a handle, DID or email address (case-insensitive).
    pub text: Option<&'a str>,
    /// Part of an email address (case-insensitive).
    pub email: Option<&'a str>,
    /// Only accounts taken down (or suspended).
    pub taken_down_only: bool,
    /// Accounts after this DID.
    pub after: Option<&'a str>,
    pub limit: u64,
}

/// Accounts matching `search`, by DID, deleted ones excepted.
pub async fn search<C: ConnectionTrait>(conn: &C, search: Search<'_>) -> Result<Vec<Info>, DbErr> {
    let like = |text: &str| {
        let escaped = text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        format!("%{escaped}%")
    };
    let lower = |column: Expr| Func::lower(column);
    // Accounts whose address matches: a subquery, as actor and account have no declared relation.
    let email_matches = |pattern: String| {
        Expr::col((actor::Entity, actor::Column::Did)).in_subquery(
            Query::select()
                .column(account::Column::Did)
                .from(account::Entity)
                .and_where(Expr::expr(lower(Expr::col(account::Column::Email))).like(pattern))
                .to_owned(),
        )
    };
    let mut query = actor::Entity::find()
        .filter(actor::Column::DeletedAt.is_null())
        .order_by_asc(actor::Column::Did)
        .limit(search.limit);
    if let Some(text) = search.text.map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = like(text.trim_start_matches('@'));
        query = query.filter(
            Condition::any()
                .add(Expr::expr(lower(Expr::col((actor::Entity, actor::Column::Handle)))).like(pattern.clone()))
                .add(Expr::expr(lower(Expr::col((actor::Entity, actor::Column::Did)))).like(pattern.clone()))
                .add(email_matches(pattern)),
        );
    }
    if let Some(email) = search.email.map(str::trim).filter(|t| !t.is_empty()) {
        query = query.filter(email_matches(like(email)));
    }
    if search.taken_down_only {
        query = query.filter(actor::Column::TakedownRef.is_not_null());
    }
    if let Some(after) = search.after {
        query = query.filter(actor::Column::Did.gt(after));
    }
    let mut out = Vec::new();
    for found in query.all(conn).await? {
        out.push(info(conn, found).await?);
    }
    Ok(out)
}

/// How many accounts there are in each state.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub active: u64,
    pub deactivated: u64,
    pub taken_down: u64,
    pub pending_deletion: u64,
}

pub async fn counts<C: ConnectionTrait>(conn: &C) -> Result<Counts, DbErr> {
    let count = |condition: Condition| actor::Entity::find().filter(condition).count(conn);
    Ok(Counts {
        active: count(
            Condition::all()
                .add(actor::Column::TakedownRef.is_null())
                .add(actor::Column::DeactivatedAt.is_null())
                .add(actor::Column::DeletedAt.is_null()),
        )
        .await?,
        deactivated: count(
            Condition::all()
                .add(actor::Column::TakedownRef.is_null())
                .add(actor::Column::DeactivatedAt.is_not_null())
                .add(actor::Column::DeletedAt.is_null()),
        )
        .await?,
        taken_down: count(
            Condition::all().add(actor::Column::TakedownRef.is_not_null()).add(actor::Column::DeletedAt.is_null()),
        )
        .await?,
        pending_deletion: count(Condition::all().add(actor::Column::DeletedAt.is_not_null())).await?,
    })
}
