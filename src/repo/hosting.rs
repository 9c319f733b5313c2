//! Whether a repository is served and what its current root is: what every sync read asks
//! first (relays call `getLatestCommit` and `getRepoStatus` for each repository they follow).
//! One statement answers both. Through sqlx on SQLite, the account, its credentials row and the
//! root were three statements, each two hand-offs to and from the connection's worker thread.

use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{DatabaseConnection, DbBackend, DbErr};

use aurora_atproto::syntax::{CidString, Did, Tid};

use crate::account::hosting_status;
use crate::db::entities::{actor, repo_root};
use crate::db::{point_read, BuiltSql};
use crate::repo::records::malformed;
use crate::sequencer::AccountStatus;

/// An account's hosting state and its repository's current commit, if it has one.
pub struct Hosting {
    /// Deleted and waiting out its grace period: gone to everything but restoring and purging.
    pub deleted: bool,
    pub status: AccountStatus,
    pub root: Option<Root>,
}

/// A repository's current commit.
pub struct Root {
    pub cid: CidString,
    pub rev: Tid,
}

/// The columns [`Hosting`] is made of, in [`hosting_query`]'s order.
struct Row {
    deleted_at: Option<String>,
    takedown_ref: Option<String>,
    takedown_until: Option<String>,
    deactivated_at: Option<String>,
    cid: Option<String>,
    rev: Option<String>,
}

/// The actor row of `did` (deleted or not) with its repository's root, joined.
fn hosting_query(did: &str) -> SelectStatement {
    let mut query = Query::select();
    query
        .column((actor::Entity, actor::Column::DeletedAt))
        .column((actor::Entity, actor::Column::TakedownRef))
        .column((actor::Entity, actor::Column::TakedownUntil))
        .column((actor::Entity, actor::Column::DeactivatedAt))
        .column((repo_root::Entity, repo_root::Column::Cid))
        .column((repo_root::Entity, repo_root::Column::Rev))
        .from(actor::Entity)
        .left_join(
            repo_root::Entity,
            Expr::col((repo_root::Entity, repo_root::Column::Did)).equals((actor::Entity, actor::Column::Did)),
        )
        .and_where(Expr::col((actor::Entity, actor::Column::Did)).eq(did));
    query
}

/// [`hosting_query`]'s SQL for each backend, built once.
fn hosting_sql(backend: DbBackend) -> &'static str {
    static SQL: BuiltSql = BuiltSql::new();
    SQL.get(backend, || hosting_query(""))
}

/// The hosting state of `did`, `None` when no account by that DID is here (deleted ones
/// included, until purged). On SQLite's reader connections where there are some (on this
/// thread, see [`crate::db::SqliteReader`]), else through the pool.
pub async fn hosting(
    db: &DatabaseConnection,
    reader: Option<&crate::db::Reader>,
    did: &Did,
) -> Result<Option<Hosting>, DbErr> {
    let on_reader = |row: &rusqlite::Row<'_>| {
        // In [`hosting_query`]'s order.
        Ok(Row {
            deleted_at: row.get(0)?,
            takedown_ref: row.get(1)?,
            takedown_until: row.get(2)?,
            deactivated_at: row.get(3)?,
            cid: row.get(4)?,
            rev: row.get(5)?,
        })
    };
    let on_pool = |row: &sea_orm::QueryResult| {
        Ok(Row {
            deleted_at: row.try_get("", "deleted_at")?,
            takedown_ref: row.try_get("", "takedown_ref")?,
            takedown_until: row.try_get("", "takedown_until")?,
            deactivated_at: row.try_get("", "deactivated_at")?,
            cid: row.try_get("", "cid")?,
            rev: row.try_get("", "rev")?,
        })
    };
    let row = point_read(db, reader, hosting_sql, &[did.as_str()], on_reader, on_pool).await?;
    row.map(Hosting::from_row).transpose()
}

impl Hosting {
    fn from_row(row: Row) -> Result<Hosting, DbErr> {
        let status =
            hosting_status(row.takedown_ref.is_some(), row.takedown_until.is_some(), row.deactivated_at.is_some());
        let root = match (row.cid, row.rev) {
            (Some(cid), Some(rev)) => Some(Root {
                cid: cid.parse().map_err(|_| malformed("CID", &cid))?,
                rev: rev.parse().map_err(|_| malformed("rev", &rev))?,
            }),
            _ => None,
        };
        Ok(Hosting { deleted: row.deleted_at.is_some(), status, root })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_statement_binds_the_did_where_the_built_one_does() {
        crate::db::assert_built_once(hosting_query("did:plc:abc"), hosting_sql, &["did:plc:abc"]);
    }

    #[test]
    fn a_takedown_outranks_deactivation_and_one_with_an_expiry_is_a_suspension() {
        let row = |takedown: bool, until: bool, deactivated: bool| Row {
            deleted_at: None,
            takedown_ref: takedown.then(|| "ref".to_owned()),
            takedown_until: until.then(|| "2030-01-01T00:00:00Z".to_owned()),
            deactivated_at: deactivated.then(|| "2024-01-01T00:00:00Z".to_owned()),
            cid: None,
            rev: None,
        };
        let status = |r| Hosting::from_row(r).expect("hosting").status;
        assert_eq!(status(row(false, false, false)), AccountStatus::Active);
        assert_eq!(status(row(false, false, true)), AccountStatus::Deactivated);
        assert_eq!(status(row(true, false, true)), AccountStatus::Takendown);
        assert_eq!(status(row(true, true, false)), AccountStatus::Suspended);
        let broken = Row { cid: Some("not a cid".into()), rev: Some("3kabc".into()), ..row(false, false, false) };
        assert!(Hosting::from_row(broken).is_err(), "a malformed root is an error, not a missing one");
    }
}
