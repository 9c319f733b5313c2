//! `aurora-locus migrate-db <postgres-url>`: copies a server's SQLite database into a new
//! PostgreSQL database, table by table in one transaction on each side (a consistent snapshot
//! read, an all-or-nothing write), then checks every table holds as many rows on both sides.
//! Blobs stay where they are: point the PostgreSQL server at the same blob directory.

use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, IntoActiveModel, Iterable,
    PaginatorTrait, PrimaryKeyToColumn, QueryOrder, Statement, TransactionTrait,
};

use crate::db::entities::*;

/// Why the copy did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("the source must be a SQLite database (AURORA_DATABASE_URL is {0})")]
    SourceNotSqlite(String),
    #[error("the target must be a postgres:// URL")]
    TargetNotPostgres,
    #[error("the target database already holds accounts; migrate into a new, empty database")]
    TargetNotEmpty,
    #[error("table {table}: {source_rows} rows in SQLite but {target_rows} in PostgreSQL after the copy")]
    Mismatch { table: &'static str, source_rows: u64, target_rows: u64 },
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// One table copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub table: &'static str,
    pub rows: u64,
}

/// Rows read and written per statement (well under PostgreSQL's limit on parameters).
const PAGE: u64 = 500;

/// Copies every row of `E`, in primary-key order; how many.
async fn copy<E, S, T>(source: &S, target: &T) -> Result<u64, DbErr>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    S: ConnectionTrait,
    T: ConnectionTrait,
{
    let mut query = E::find();
    for key in E::PrimaryKey::iter() {
        query = query.order_by_asc(key.into_column());
    }
    let mut pages = query.paginate(source, PAGE);
    let mut rows = 0;
    while let Some(models) = pages.fetch_and_next().await? {
        rows += models.len() as u64;
        E::insert_many(models.into_iter().map(IntoActiveModel::into_active_model))
            .exec_without_returning(target)
            .await?;
    }
    Ok(rows)
}

async fn count<E: EntityTrait, C: ConnectionTrait>(conn: &C) -> Result<u64, DbErr>
where
    E::Model: Sync,
{
    E::find().count(conn).await
}

/// Runs `$action::<Entity>` for every table, parents before the tables that refer to them.
macro_rules! each_table {
    ($action:ident, $arg:expr) => {{
        let mut done: Vec<(&'static str, u64)> = Vec::new();
        each_table!(@ done, $action, $arg,
            server_meta, actor, account, app_password, refresh_token, signing_key, repo_root,
            repo_block, repo_seq, email_token, invite_code, invite_code_use, reserved_key, record,
            account_pref, blob, record_blob, account_totp, oauth_device, oauth_device_account,
            oauth_authorized_client, oauth_request, oauth_session, oauth_used_refresh_token,
            oauth_replay, admin_audit, job_schedule, did_cache, lexicon_cache);
        done
    }};
    (@ $done:ident, $action:ident, $arg:expr, $($table:ident),*) => {
        $( $done.push((stringify!($table), $action::<$table::Entity, _>($arg).await?)); )*
    };
}

async fn copy_into<E, S>(pair: (&S, &sea_orm::DatabaseTransaction)) -> Result<u64, DbErr>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    S: ConnectionTrait,
{
    copy::<E, S, sea_orm::DatabaseTransaction>(pair.0, pair.1).await
}

/// Tables whose key PostgreSQL numbers from a sequence, which must continue past the copied rows.
const NUMBERED: [(&str, &str); 3] = [("repo_seq", "seq"), ("account_pref", "id"), ("admin_audit", "id")];

/// Copies the SQLite database `source` into the PostgreSQL database at `target_url` (created
/// and migrated beforehand, empty), then checks the counts; what was copied.
pub async fn migrate(source: &DatabaseConnection, target_url: &str) -> Result<Vec<Copied>, MigrateError> {
    if source.get_database_backend() != DbBackend::Sqlite {
        return Err(MigrateError::SourceNotSqlite(format!("{:?}", source.get_database_backend())));
    }
    if !(target_url.starts_with("postgres://") || target_url.starts_with("postgresql://")) {
        return Err(MigrateError::TargetNotPostgres);
    }
    let target = crate::db::connect(target_url).await?;
    if count::<actor::Entity, _>(&target).await? > 0 || count::<repo_block::Entity, _>(&target).await? > 0 {
        return Err(MigrateError::TargetNotEmpty);
    }
    // Rows a fresh server writes at start-up (the jobs' schedule, relay reports) give way to
    // the source's.
    job_schedule::Entity::delete_many().exec(&target).await?;
    server_meta::Entity::delete_many().exec(&target).await?;

    let read = source.begin().await?;
    let write = target.begin().await?;
    let copied = each_table!(copy_into, (&read, &write));
    for (table, column) in NUMBERED {
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), (SELECT COALESCE(MAX(\"{column}\"), 0) + 1 FROM \"{table}\"), false)"
        );
        write.execute(Statement::from_string(DbBackend::Postgres, sql)).await?;
    }
    write.commit().await?;
    read.commit().await?;

    let source_counts = each_table!(count_of, source);
    let target_counts = each_table!(count_of, &target);
    for ((table, copied_rows), ((_, source_rows), (_, target_rows))) in
        copied.iter().zip(source_counts.iter().zip(target_counts.iter()))
    {
        // The source may have moved on since the snapshot if a server still runs on it.
        if target_rows != copied_rows {
            return Err(MigrateError::Mismatch { table, source_rows: *source_rows, target_rows: *target_rows });
        }
    }
    target.close().await?;
    Ok(copied.into_iter().map(|(table, rows)| Copied { table, rows }).collect())
}

async fn count_of<E: EntityTrait, C: ConnectionTrait>(conn: &C) -> Result<u64, DbErr>
where
    E::Model: Sync,
{
    count::<E, C>(conn).await
}
