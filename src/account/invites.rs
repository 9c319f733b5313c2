//! Invite codes: `<host>-xxxxx-xxxxx`, each usable a set number of times.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set};

use crate::db::entities::{invite_code, invite_code_use};

use aurora_atproto::syntax::Did;

/// A new code for this server: its host name with dots as dashes, then two random groups.
pub fn new_code(hostname: &str) -> String {
    let random = super::password::random_base32(10);
    format!("{}-{}-{}", hostname.replace('.', "-"), &random[..5], &random[5..])
}

pub async fn create<C: ConnectionTrait>(
    conn: &C,
    code: &str,
    uses: i32,
    for_account: &str,
    created_by: &str,
) -> Result<(), DbErr> {
    invite_code::Entity::insert(invite_code::ActiveModel {
        code: Set(code.to_owned()),
        available_uses: Set(uses),
        disabled: Set(false),
        for_account: Set(for_account.to_owned()),
        created_by: Set(created_by.to_owned()),
        created_at: Set(super::now()),
    })
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

/// Whether `code` can be used once more.
pub async fn is_available<C: ConnectionTrait>(conn: &C, code: &str) -> Result<bool, DbErr> {
    let Some(row) = invite_code::Entity::find_by_id(code.to_owned()).one(conn).await? else { return Ok(false) };
    if row.disabled {
        return Ok(false);
    }
    let used = invite_code_use::Entity::find().filter(invite_code_use::Column::Code.eq(code)).count(conn).await?;
    Ok((used as i64) < i64::from(row.available_uses))
}

pub async fn record_use<C: ConnectionTrait>(conn: &C, code: &str, used_by: &Did) -> Result<(), DbErr> {
    invite_code_use::Entity::insert(invite_code_use::ActiveModel {
        code: Set(code.to_owned()),
        used_by: Set(used_by.clone()),
        used_at: Set(super::now()),
    })
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

/// The codes issued to an account, newest first, each with its uses (newest first).
pub async fn for_account<C: ConnectionTrait>(
    conn: &C,
    did: &str,
) -> Result<Vec<(invite_code::Model, Vec<invite_code_use::Model>)>, DbErr> {
    let codes = invite_code::Entity::find()
        .filter(invite_code::Column::ForAccount.eq(did))
        .order_by_desc(invite_code::Column::CreatedAt)
        .all(conn)
        .await?;
    let mut out = Vec::with_capacity(codes.len());
    for code in codes {
        let uses = invite_code_use::Entity::find()
            .filter(invite_code_use::Column::Code.eq(code.code.as_str()))
            .order_by_desc(invite_code_use::Column::UsedAt)
            .all(conn)
            .await?;
        out.push((code, uses));
    }
    Ok(out)
}
