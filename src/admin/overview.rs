//! What the operators' overview and account pages show: totals of what the server stores, and
//! one account's sessions, repository size and latest events.

use sea_orm::sea_query::{Alias, Expr, Func, Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use aurora_atproto::syntax::Did;

use crate::db::entities::{app_password, blob, oauth_session, record, refresh_token, repo_block, repo_seq};

/// Totals across the server.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub records: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
    pub head_seq: i64,
}

/// A count and a sum over one table, as one row.
async fn count_and_sum<C: ConnectionTrait>(
    conn: &C,
    mut query: SelectStatement,
    sum_of: Expr,
) -> Result<(u64, u64), DbErr> {
    query
        .expr_as(Func::count(Expr::val(1)), Alias::new("n"))
        // PostgreSQL sums a BIGINT into NUMERIC; the cast keeps both databases' answer an integer.
        .expr_as(
            Expr::expr(Func::coalesce([Func::sum(sum_of).into(), Expr::val(0).into()])).cast_as(Alias::new("BIGINT")),
            Alias::new("total"),
        );
    let backend = conn.get_database_backend();
    let Some(row) = conn.query_one(backend.build(&query)).await? else { return Ok((0, 0)) };
    let n: i64 = row.try_get("", "n")?;
    let total: i64 = row.try_get("", "total")?;
    Ok((n.max(0) as u64, total.max(0) as u64))
}

pub async fn totals<C: ConnectionTrait>(conn: &C) -> Result<Totals, DbErr> {
    let records = record::Entity::find().count(conn).await?;
    let (blobs, blob_bytes) = count_and_sum(
        conn,
        Query::select().from(blob::Entity).and_where(Expr::col(blob::Column::TempKey).is_null()).to_owned(),
        Expr::col(blob::Column::Size),
    )
    .await?;
    let head_seq = repo_seq::Entity::find().order_by_desc(repo_seq::Column::Seq).one(conn).await?.map_or(0, |e| e.seq);
    Ok(Totals { records, blobs, blob_bytes, head_seq })
}

/// One account's footprint and sessions.
#[derive(Clone, Debug, Default)]
pub struct Footprint {
    pub records: u64,
    pub blocks: u64,
    pub repo_bytes: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
    pub password_sessions: u64,
    pub oauth_sessions: u64,
    pub app_passwords: u64,
}

pub async fn footprint<C: ConnectionTrait>(conn: &C, did: &Did) -> Result<Footprint, DbErr> {
    let (blocks, repo_bytes) = count_and_sum(
        conn,
        Query::select().from(repo_block::Entity).and_where(Expr::col(repo_block::Column::Did).eq(did)).to_owned(),
        Expr::col(repo_block::Column::Size),
    )
    .await?;
    let (blobs, blob_bytes) = count_and_sum(
        conn,
        Query::select()
            .from(blob::Entity)
            .and_where(Expr::col(blob::Column::Did).eq(did))
            .and_where(Expr::col(blob::Column::TempKey).is_null())
            .to_owned(),
        Expr::col(blob::Column::Size),
    )
    .await?;
    Ok(Footprint {
        records: record::Entity::find().filter(record::Column::Did.eq(did)).count(conn).await?,
        blocks,
        repo_bytes,
        blobs,
        blob_bytes,
        password_sessions: refresh_token::Entity::find().filter(refresh_token::Column::Did.eq(did)).count(conn).await?,
        oauth_sessions: oauth_session::Entity::find().filter(oauth_session::Column::Did.eq(did)).count(conn).await?,
        app_passwords: app_password::Entity::find().filter(app_password::Column::Did.eq(did)).count(conn).await?,
    })
}

/// The account's latest firehose events: (seq, type, time).
pub async fn recent_events<C: ConnectionTrait>(
    conn: &C,
    did: &Did,
    limit: u64,
) -> Result<Vec<(i64, String, String)>, DbErr> {
    let rows: Vec<(i64, String, String)> = repo_seq::Entity::find()
        .select_only()
        .column(repo_seq::Column::Seq)
        .column(repo_seq::Column::EventType)
        .column(repo_seq::Column::SequencedAt)
        .filter(repo_seq::Column::Did.eq(did))
        .order_by_desc(repo_seq::Column::Seq)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows)
}
