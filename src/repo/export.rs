//! Repository exports for `com.atproto.sync.getRepo`: every stored block of the repository
//! (or those written after a rev), read by one streaming query inside a read snapshot, so the
//! CAR is consistent with its root even while commits land, and memory stays bounded by the
//! output pipe whatever the repository's size.
//!
//! The block table holds exactly the current repository (each commit deletes the blocks it
//! no longer needs), so the CAR needs no tree walk: blocks come out in CID order, as the
//! reference PDS writes them.
//!
//! On SQLite the export runs on a blocking thread through one of the reader's connections
//! ([`write_car_blocking`]): sqlx would pass every block across its connection thread's channel
//! on its own, which cost more than reading and writing the block.

use cid::Cid;
use sea_orm::{
    AccessMode, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    IsolationLevel, QueryFilter, QueryOrder, QuerySelect, QueryTrait, TransactionTrait,
};
use tokio::io::AsyncWrite;

use aurora_atproto::car::{BlockingCarWriter, CarError};

use crate::db::entities::{repo_block, repo_root};
use crate::db::{PgReader, SqliteReader};
use crate::repo::download::Sink;
use aurora_atproto::syntax::Did;

/// Bytes of CAR framed in memory before they are written out.
const CHUNK: usize = 64 * 1024;

/// A repository as of one moment: its root and a read transaction that sees its blocks.
pub struct Snapshot {
    txn: DatabaseTransaction,
    did: Did,
    pub root: repo_root::Model,
}

/// Opens a snapshot of `did`'s repository, or `None` when it has no root.
pub async fn snapshot(db: &DatabaseConnection, did: &Did) -> Result<Option<Snapshot>, DbErr> {
    // PostgreSQL's default isolation gives each statement its own snapshot; the root and the
    // blocks must come from the same one. SQLite's read transaction is a snapshot already.
    let txn = match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly)).await?
        }
        _ => db.begin().await?,
    };
    let Some(root) = repo_root::Entity::find_by_id(did.clone()).one(&txn).await? else { return Ok(None) };
    Ok(Some(Snapshot { txn, did: did.clone(), root }))
}

impl Snapshot {
    /// The commit CID this snapshot is at.
    pub fn commit(&self) -> Result<Cid, DbErr> {
        self.root.cid.to_cid().map_err(|e| DbErr::Custom(format!("bad root CID: {e}")))
    }

    /// Writes the repository as a CAR rooted at its commit: all of it, or with `since` only
    /// the blocks written by later revisions (which include the current commit). The blocks
    /// come from one streaming query and are framed in memory, a chunk at a time.
    pub async fn write_car<W: AsyncWrite + Send + Unpin>(
        self,
        since: Option<&str>,
        mut writer: W,
    ) -> Result<W, CarError> {
        use futures_util::TryStreamExt;
        use sea_orm::StreamTrait;
        use tokio::io::AsyncWriteExt;

        let commit = self.commit().map_err(|e| CarError::Malformed(e.to_string()))?;
        let backend = |e: DbErr| CarError::Io(std::io::Error::other(e));
        let mut query = repo_block::Entity::find()
            .select_only()
            .columns([repo_block::Column::Cid, repo_block::Column::Content])
            .filter(repo_block::Column::Did.eq(self.did.as_str()))
            .order_by_asc(repo_block::Column::Cid);
        if let Some(since) = since {
            query = query.filter(repo_block::Column::Rev.gt(since));
        }
        let backend_kind = self.txn.get_database_backend();
        if backend_kind == DbBackend::Postgres && since.is_none() {
            // The whole repository: the primary key's index yields its blocks in CID order. The
            // planner, costing the sort too low, would rather scan and sort, two to three times
            // slower for thousands of blocks (the sort copies every block). A diff since a rev
            // is left to the planner: its index on the rev finds a few blocks to sort.
            self.txn.execute_unprepared("SET LOCAL enable_sort = off").await.map_err(backend)?;
        }
        let statement = backend_kind.build(&QueryTrait::into_query(query));
        let mut car = BlockingCarWriter::new(Vec::with_capacity(2 * CHUNK), commit)?;
        {
            let mut rows = self.txn.stream(statement).await.map_err(backend)?;
            while let Some(row) = rows.try_next().await.map_err(backend)? {
                let cid: String = row.try_get_by_index(0).map_err(backend)?;
                let content: Vec<u8> = row.try_get_by_index(1).map_err(backend)?;
                write_block(&mut car, cid.as_bytes(), &content)?;
                if car.get_ref().len() >= CHUNK {
                    writer.write_all(car.get_ref()).await?;
                    car.get_mut().clear();
                }
            }
        }
        writer.write_all(&car.finish()?).await?;
        writer.flush().await?;
        // Read only: ending it either way is the same.
        let _ = self.txn.commit().await;
        Ok(writer)
    }
}

/// The export of [`Snapshot::write_car`] read on one of SQLite's reader connections, in one read
/// transaction (so the blocks are the root's), on this thread: call it where blocking is
/// allowed. `None` when the repository has no root.
pub fn write_car_blocking<W: std::io::Write>(
    reader: &SqliteReader,
    did: &Did,
    since: Option<&str>,
    writer: W,
) -> Result<Option<W>, CarError> {
    use rusqlite::OptionalExtension;

    let database = |e: rusqlite::Error| CarError::Io(std::io::Error::other(e));
    reader
        .read(|connection| {
            let snapshot = connection.unchecked_transaction()?;
            let root: Option<String> = snapshot
                .query_row("SELECT cid FROM repo_root WHERE did = ?1", [did.as_str()], |row| row.get(0))
                .optional()?;
            let Some(root) = root else { return Ok(Ok(None)) };
            let written = (|| {
                let root = parse_cid(&root)?;
                let mut car = BlockingCarWriter::new(writer, root)?;
                let mut blocks = match since {
                    Some(_) => snapshot
                        .prepare("SELECT cid, content FROM repo_block WHERE did = ?1 AND rev > ?2 ORDER BY cid")
                        .map_err(database)?,
                    None => snapshot
                        .prepare("SELECT cid, content FROM repo_block WHERE did = ?1 ORDER BY cid")
                        .map_err(database)?,
                };
                let mut rows = match since {
                    Some(since) => blocks.query([did.as_str(), since]),
                    None => blocks.query([did.as_str()]),
                }
                .map_err(database)?;
                while let Some(row) = rows.next().map_err(database)? {
                    let cid = row.get_ref(0).and_then(|v| Ok(v.as_bytes()?)).map_err(database)?;
                    let content = row.get_ref(1).and_then(|v| Ok(v.as_blob()?)).map_err(database)?;
                    write_block(&mut car, cid, content)?;
                }
                car.finish().map(Some)
            })();
            // Read only: ending it either way is the same.
            let _ = snapshot.rollback();
            Ok(written)
        })
        .map_err(database)?
}

/// The export of [`Snapshot::write_car`] on one of PostgreSQL's reader connections (see
/// [`crate::db::PgReader`]): the snapshot opened and set up in one round trip, the blocks
/// streamed and read in place. Through the pool it took eight round trips (the transaction's
/// settings one statement each, and a test of the connection on its return), and every row
/// was copied into a value of its own. The CAR goes into `sink` (not finished here); `false` when
/// the repository has no root.
pub async fn write_car_postgres(
    reader: &PgReader,
    did: &Did,
    since: Option<&str>,
    sink: &mut Sink,
) -> Result<bool, CarError> {
    let mut checkout = reader.checkout().await.map_err(|e| CarError::Io(std::io::Error::other(e)))?;
    let connection = checkout.connection().ok_or_else(|| CarError::Malformed("no connection".into()))?;
    let found = export_on(connection, did, since, sink).await?;
    checkout.keep();
    Ok(found)
}

/// [`write_car_postgres`] on `connection`.
async fn export_on(
    connection: &mut sea_orm::sqlx::PgConnection,
    did: &Did,
    since: Option<&str>,
    sink: &mut Sink,
) -> Result<bool, CarError> {
    use futures_util::TryStreamExt;
    use sea_orm::sqlx::{self, Executor, Row};

    // Through `Executor`'s boxed futures: the query builders' own `async fn`s hide the
    // connection's lifetime in types the compiler cannot prove `Send` for a handler's future.
    let database = |e: sqlx::Error| CarError::Io(std::io::Error::other(e));
    // The whole repository comes in the primary key's order with sorting off; see
    // [`Snapshot::write_car`]. `SET LOCAL` ends with the transaction.
    let begin = match since {
        None => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL enable_sort = off",
        Some(_) => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    };
    connection.execute(begin).await.map_err(database)?;
    let root = sqlx::query("SELECT cid FROM repo_root WHERE did = $1").bind(did.as_str());
    let Some(root) = connection.fetch_optional(root).await.map_err(database)? else {
        connection.execute("COMMIT").await.map_err(database)?;
        return Ok(false);
    };
    let root: &str = root.try_get(0).map_err(database)?;
    let mut car = BlockingCarWriter::new(Vec::with_capacity(2 * CHUNK), parse_cid(root)?)?;
    {
        let blocks = match since {
            None => sqlx::query("SELECT cid, content FROM repo_block WHERE did = $1 ORDER BY cid").bind(did.as_str()),
            Some(since) => sqlx::query("SELECT cid, content FROM repo_block WHERE did = $1 AND rev > $2 ORDER BY cid")
                .bind(did.as_str())
                .bind(since),
        };
        let mut rows = connection.fetch(blocks);
        while let Some(row) = rows.try_next().await.map_err(database)? {
            let cid: &str = row.try_get(0).map_err(database)?;
            let content: &[u8] = row.try_get(1).map_err(database)?;
            write_block(&mut car, cid.as_bytes(), content)?;
            if car.get_ref().len() >= CHUNK {
                sink.send(car.get_ref()).await?;
                car.get_mut().clear();
            }
        }
    }
    connection.execute("COMMIT").await.map_err(database)?;
    sink.send(&car.finish()?).await?;
    Ok(true)
}

/// One stored block into the CAR. The stored CID's text is decoded straight to the bytes the
/// CAR carries; only a CID of another form is parsed whole.
fn write_block<W: std::io::Write>(car: &mut BlockingCarWriter<W>, cid: &[u8], content: &[u8]) -> Result<(), CarError> {
    match aurora_atproto::cids::atproto_bytes(cid, &mut [0; 36]) {
        Some(encoded) => car.write_encoded(encoded, content),
        None => {
            let text = std::str::from_utf8(cid).map_err(|_| CarError::Malformed("a stored CID is not text".into()))?;
            car.write_block(&parse_cid(text)?, content)
        }
    }
}

fn parse_cid(stored: &str) -> Result<Cid, CarError> {
    aurora_atproto::cids::parse(stored).map_err(|e| CarError::Malformed(format!("stored CID {stored}: {e}")))
}
