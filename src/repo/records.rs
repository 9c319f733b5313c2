//! Reading records: the record index joined with the repository's blocks.

use std::sync::LazyLock;

use bytes::Bytes;
use sea_orm::sea_query::{Alias, Expr, JoinType, Order, Query, SelectStatement, SimpleExpr};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use serde_json::Value;

use aurora_atproto::data::DagCborJson;
use aurora_atproto::syntax::{AtIdentifier, AtUri, CidString, Did, Nsid, RecordKey, SyntaxError};

use aurora_xrpc::RenderedJson;

use crate::db::entities::{actor, record, repo_block};
use crate::repo::rendered::RenderedRecords;

/// A record's index row with its block, read together.
pub struct StoredRecord {
    pub uri: AtUri,
    pub cid: CidString,
    /// The block, or `None` when the index names a block the repository lacks, or when the
    /// record's JSON was kept from an earlier read (then the block is not read). A page's blocks
    /// share one buffer (one allocation for the page, not one per record).
    pub content: Option<Bytes>,
    /// The record's JSON as an earlier read wrote it ([`RenderedRecords`]).
    pub rendered: Option<RenderedJson>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error("record block {0} is missing")]
    MissingBlock(CidString),
    #[error("record block {0} does not decode: {1}")]
    Undecodable(CidString, String),
}

impl StoredRecord {
    /// The record's value as JSON.
    pub fn value(&self) -> Result<Value, ReadError> {
        let bytes = self.content.as_deref().ok_or_else(|| ReadError::MissingBlock(self.cid.clone()))?;
        // A stored block was checked when it was written or imported: decoding it again
        // strictly (a canonical-form check re-encodes the whole value) was an eighth of a
        // listRecords page's instructions.
        aurora_atproto::data::dag_cbor_to_json(bytes)
            .map_err(|error| ReadError::Undecodable(self.cid.clone(), error.to_string()))
    }

    /// The record's value as it is served: its block, written out as JSON straight from its
    /// bytes and checked as it is (see [`DagCborJson`]). Takes the block out of the record.
    pub fn served_value(&mut self) -> Result<DagCborJson, ReadError> {
        let bytes = self.content.take().ok_or_else(|| ReadError::MissingBlock(self.cid.clone()))?;
        Ok(DagCborJson::from_block(bytes))
    }

    /// The record's JSON: as kept from an earlier read, or written now from its block (checked
    /// as [`Self::served_value`] is) and kept in `rendered` for the next.
    pub fn served_json(&mut self, rendered: &RenderedRecords) -> Result<RenderedJson, ReadError> {
        if let Some(json) = self.rendered.take() {
            return Ok(json);
        }
        let block = self.served_value()?;
        rendered.render(self.cid.as_str(), &block).map_err(|e| ReadError::Undecodable(self.cid.clone(), e.to_string()))
    }

    /// The record key: the URI's last segment.
    pub fn rkey(&self) -> &str {
        self.uri.rkey().unwrap_or_default()
    }
}

/// Bytes a page's shared buffer first makes room for per record: a post's block is some 100 to
/// 300 bytes; a page of larger records grows it.
const TYPICAL_BLOCK: usize = 256;

/// Which page of a collection's records to read.
#[derive(Clone, Copy)]
pub struct Page<'a> {
    /// Only records with keys after this one (in the page's order).
    pub cursor: Option<&'a str>,
    /// Oldest first (ascending keys) instead of newest first.
    pub reverse: bool,
    pub limit: u64,
}

/// A page of `did`'s records in `collection` with their blocks, in one query; taken-down
/// records are never returned. `cursor` stands for whether there is one: the statement's
/// shape depends on it, not on its value.
fn page_query(did: impl Into<SimpleExpr>, collection: &str, page: Page<'_>) -> SelectStatement {
    let mut query = keys_query(did, collection, page);
    query.column((repo_block::Entity, repo_block::Column::Content)).left_join(
        repo_block::Entity,
        Expr::col((repo_block::Entity, repo_block::Column::Did)).equals((record::Entity, record::Column::Did)).and(
            Expr::col((repo_block::Entity, repo_block::Column::Cid)).equals((record::Entity, record::Column::Cid)),
        ),
    );
    query
}

/// [`page_query`] without the blocks: the page's keys and CIDs alone.
fn keys_query(did: impl Into<SimpleExpr>, collection: &str, page: Page<'_>) -> SelectStatement {
    let column = |column| Expr::col((record::Entity, column));
    let mut query = Query::select();
    // The URI is built from its parts rather than parsed back from its text: parsing validates
    // the DID, collection and key of every row again, a tenth of a page's instructions.
    query
        .column((record::Entity, record::Column::Rkey))
        .column((record::Entity, record::Column::Cid))
        .from(record::Entity)
        .and_where(column(record::Column::Did).eq(did))
        .and_where(column(record::Column::Collection).eq(collection))
        .and_where(column(record::Column::TakedownRef).is_null());
    if let Some(cursor) = page.cursor {
        let rkey = column(record::Column::Rkey);
        query.and_where(if page.reverse { rkey.gt(cursor) } else { rkey.lt(cursor) });
    }
    let order = if page.reverse { Order::Asc } else { Order::Desc };
    query.order_by((record::Entity, record::Column::Rkey), order).limit(page.limit);
    query
}

/// [`page_query`]'s SQL for each backend and shape (cursor or not, either direction), built
/// once, as [`lookup_sql`] is: building it was a twentieth of a page's instructions.
fn page_sql(backend: DbBackend, page: Page<'_>) -> &'static str {
    static SQL: LazyLock<Vec<String>> = LazyLock::new(|| {
        let shapes = [DbBackend::Sqlite, DbBackend::Postgres].into_iter().flat_map(|backend| {
            [(false, false), (false, true), (true, false), (true, true)].map(move |(cursor, reverse)| {
                let page = Page { cursor: cursor.then_some(""), reverse, limit: 0 };
                backend.build(&page_query("", "", page)).sql
            })
        });
        shapes.collect()
    });
    let shape = usize::from(page.cursor.is_some()) * 2 + usize::from(page.reverse);
    &SQL[usize::from(backend == DbBackend::Postgres) * 4 + shape]
}

/// [`keys_query`]'s SQL on SQLite for each shape, built once; it binds [`page_sql`]'s values.
fn keys_sql(page: Page<'_>) -> &'static str {
    static SQL: LazyLock<Vec<String>> = LazyLock::new(|| {
        let shapes = [(false, false), (false, true), (true, false), (true, true)].map(|(cursor, reverse)| {
            let page = Page { cursor: cursor.then_some(""), reverse, limit: 0 };
            DbBackend::Sqlite.build(&keys_query("", "", page)).sql
        });
        shapes.into()
    });
    &SQL[usize::from(page.cursor.is_some()) * 2 + usize::from(page.reverse)]
}

/// The blocks of an account's records on SQLite by their CIDs, given as a JSON array (one
/// statement, whatever their number): each CID's place in the array, and its block or `NULL`.
const BLOCKS_SQL: &str = "SELECT wanted.key, repo_block.content FROM json_each(?2) AS wanted \
    LEFT JOIN repo_block ON repo_block.did = ?1 AND repo_block.cid = wanted.value";

/// The values [`page_sql`] binds, in order: the account, the collection, the cursor if there is
/// one, and the limit.
fn page_values(did: &Did, collection: &Nsid, page: Page<'_>) -> Vec<sea_orm::Value> {
    let mut values = vec![sea_orm::Value::from(did.as_str()), sea_orm::Value::from(collection.as_str())];
    values.extend(page.cursor.map(sea_orm::Value::from));
    values.push(sea_orm::Value::BigUnsigned(Some(page.limit)));
    values
}

/// For PostgreSQL, the account `repo` names ([`active_account_query`]) and its page
/// ([`page_query`]) in one statement, where they were two round trips: the account's row joined
/// `LATERAL` to the page, which keeps its own order and limit. No row when the account is not
/// hosted or not active; one row with no record when the page is empty.
fn account_page_query(by_handle: bool, repo: &str, collection: &str, page: Page<'_>) -> SelectStatement {
    let listed = Alias::new("page");
    let records = page_query(Expr::col((actor::Entity, actor::Column::Did)), collection, page);
    let order = if page.reverse { Order::Asc } else { Order::Desc };
    let mut query = active_account_query(by_handle, repo);
    query
        .column((listed.clone(), record::Column::Rkey))
        .column((listed.clone(), record::Column::Cid))
        .column((listed.clone(), repo_block::Column::Content))
        .join_lateral(JoinType::LeftJoin, records, listed.clone(), Expr::cust("TRUE"))
        .order_by((listed, record::Column::Rkey), order);
    query
}

/// [`account_page_query`]'s SQL for each kind of identifier and shape of page, built once.
fn account_page_sql(repo: &AtIdentifier, page: Page<'_>) -> &'static str {
    static SQL: LazyLock<Vec<String>> = LazyLock::new(|| {
        let shapes = [false, true].into_iter().flat_map(|by_handle| {
            [(false, false), (false, true), (true, false), (true, true)].map(move |(cursor, reverse)| {
                let page = Page { cursor: cursor.then_some(""), reverse, limit: 0 };
                DbBackend::Postgres.build(&account_page_query(by_handle, "", "", page)).sql
            })
        });
        shapes.collect()
    });
    let shape = usize::from(page.cursor.is_some()) * 2 + usize::from(page.reverse);
    &SQL[usize::from(matches!(repo, AtIdentifier::Handle(_))) * 4 + shape]
}

/// The values [`account_page_sql`] binds, in the order the statement's text names them: the
/// page's (collection, cursor if there is one, limit), then the account's identifier.
fn account_page_values(repo: &AtIdentifier, collection: &Nsid, page: Page<'_>) -> Vec<sea_orm::Value> {
    let mut values = vec![sea_orm::Value::from(collection.as_str())];
    values.extend(page.cursor.map(sea_orm::Value::from));
    values.push(sea_orm::Value::BigUnsigned(Some(page.limit)));
    values.push(sea_orm::Value::from(identifier_text(repo)));
    values
}

/// The DID of the account `repo` names if it is hosted here and active: not deleted, taken
/// down (or suspended) or deactivated. `by_handle` when `repo` is a handle.
fn active_account_query(by_handle: bool, repo: &str) -> SelectStatement {
    let column = |column| Expr::col((actor::Entity, column));
    let named = if by_handle { column(actor::Column::Handle) } else { column(actor::Column::Did) };
    let mut query = Query::select();
    query
        .column((actor::Entity, actor::Column::Did))
        .from(actor::Entity)
        .and_where(column(actor::Column::DeletedAt).is_null())
        .and_where(column(actor::Column::TakedownRef).is_null())
        .and_where(column(actor::Column::DeactivatedAt).is_null())
        .and_where(named.eq(repo));
    query
}

/// [`active_account_query`]'s SQL for each backend and kind of identifier, built once.
fn active_account_sql(backend: DbBackend, repo: &AtIdentifier) -> &'static str {
    static SQL: LazyLock<[String; 4]> =
        LazyLock::new(|| per_identifier(|backend, by_handle| backend.build(&active_account_query(by_handle, "")).sql));
    pick(&SQL, backend, repo)
}

/// The DID of the account `repo` names if it is hosted here and active ([`active_account_query`]),
/// in one point read (see [`crate::db::point_read`]).
pub async fn active_did(
    db: &DatabaseConnection,
    reader: Option<&crate::db::Reader>,
    repo: &AtIdentifier,
) -> Result<Option<Did>, DbErr> {
    let sql = |backend| active_account_sql(backend, repo);
    let on_reader = |row: &rusqlite::Row<'_>| row.get::<_, String>(0);
    let on_pool = |row: &sea_orm::QueryResult| row.try_get::<String>("", "did");
    let did = crate::db::point_read(db, reader, sql, &[identifier_text(repo)], on_reader, on_pool).await?;
    did.map(|did| did.parse().map_err(|_| malformed("DID", &did))).transpose()
}

/// SQL text for each backend and kind of identifier (DID or handle), from
/// `build(backend, by_handle)`, in the order [`pick`] reads it.
fn per_identifier(build: impl Fn(DbBackend, bool) -> String) -> [String; 4] {
    [(DbBackend::Sqlite, false), (DbBackend::Sqlite, true), (DbBackend::Postgres, false), (DbBackend::Postgres, true)]
        .map(|(backend, by_handle)| build(backend, by_handle))
}

/// The entry of a [`per_identifier`] table for `backend` and the kind of identifier `repo` is.
fn pick<'a>(table: &'a [String; 4], backend: DbBackend, repo: &AtIdentifier) -> &'a str {
    let by_handle = matches!(repo, AtIdentifier::Handle(_));
    &table[usize::from(backend == DbBackend::Postgres) * 2 + usize::from(by_handle)]
}

fn identifier_text(repo: &AtIdentifier) -> &str {
    match repo {
        AtIdentifier::Did(did) => did.as_str(),
        AtIdentifier::Handle(handle) => handle.as_str(),
    }
}

/// A page of the records in `collection` of the account `repo` names, each with its block or
/// with its JSON kept from an earlier read (`rendered`); `None` when that account is not hosted
/// here or not active.
/// On SQLite's reader connections where there are some, the account and the page are read in
/// one go on this thread (see [`crate::db::SqliteReader`]): through the pool, the account's
/// lookup alone cost two hand-offs to and from its worker thread. On PostgreSQL, both in one
/// statement ([`account_page_query`]); else the two statements through the pool.
pub async fn list(
    db: &DatabaseConnection,
    reader: Option<&crate::db::Reader>,
    rendered: &RenderedRecords,
    repo: &AtIdentifier,
    collection: &Nsid,
    page: Page<'_>,
) -> Result<Option<Vec<StoredRecord>>, DbErr> {
    if let Some(reader) = reader.and_then(crate::db::Reader::sqlite) {
        use rusqlite::OptionalExtension;
        let read = |connection: &rusqlite::Connection| {
            let mut account = connection.prepare_cached(active_account_sql(DbBackend::Sqlite, repo))?;
            let did: Option<String> = account.query_row([identifier_text(repo)], |row| row.get(0)).optional()?;
            let Some(did) = did else { return Ok(None) };
            let owner: Did = did.parse().map_err(|e| conversion(0, e))?;
            let collection_text = collection.as_str();
            let page = SqlitePage { connection, did: &did, owner: &owner, collection, collection_text, page };
            if rendered.is_off() {
                return page.with_blocks().map(Some);
            }
            page.through(rendered).map(Some)
        };
        return reader.read(read).map_err(|e| DbErr::Custom(format!("cannot read records: {e}")));
    }
    let backend = db.get_database_backend();
    if backend == DbBackend::Postgres {
        let values = account_page_values(repo, collection, page);
        let rows = crate::db::postgres_rows(db, reader, account_page_sql(repo, page), values).await?;
        let Some(first) = rows.first() else { return Ok(None) };
        let did: Did = first.try_get("", "did")?;
        let mut records = Vec::with_capacity(rows.len());
        for row in &rows {
            // The one row of an empty page has the account and no record.
            let Some(rkey) = row.try_get::<Option<String>>("", "rkey")? else { continue };
            let cid: String = row.try_get("", "cid")?;
            records.push(stored_record(&did, collection, &rkey, cid, row.try_get("", "content")?)?);
        }
        return Ok(Some(kept_json(records, rendered)));
    }
    let account = Statement::from_sql_and_values(
        backend,
        active_account_sql(backend, repo),
        [sea_orm::Value::from(identifier_text(repo))],
    );
    let Some(row) = db.query_one(account).await? else { return Ok(None) };
    let did: Did = row.try_get("", "did")?;
    let statement =
        Statement::from_sql_and_values(backend, page_sql(backend, page), page_values(&did, collection, page));
    let rows = db.query_all(statement).await?;
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows {
        let text = |column: &str| row.try_get::<String>("", column);
        records.push(stored_record(&did, collection, &text("rkey")?, text("cid")?, row.try_get("", "content")?)?);
    }
    Ok(Some(kept_json(records, rendered)))
}

/// The records with the JSON kept for them where there is some (their blocks, read with them in
/// one statement here, are then not written out again).
fn kept_json(mut records: Vec<StoredRecord>, rendered: &RenderedRecords) -> Vec<StoredRecord> {
    for record in &mut records {
        record.rendered = rendered.get(record.cid.as_str());
    }
    records
}

/// One page read on a SQLite reader connection.
struct SqlitePage<'a> {
    connection: &'a rusqlite::Connection,
    did: &'a String,
    owner: &'a Did,
    collection: &'a Nsid,
    collection_text: &'a str,
    page: Page<'a>,
}

impl SqlitePage<'_> {
    /// [`page_sql`]'s or [`keys_sql`]'s values: the account, the collection, the cursor if there
    /// is one, and the limit.
    fn values(&self) -> Vec<&dyn rusqlite::ToSql> {
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![self.did, &self.collection_text];
        if let Some(cursor) = &self.page.cursor {
            values.push(cursor);
        }
        values.push(&self.page.limit);
        values
    }

    /// The record a row's key and CID (its first two columns) name, without its block.
    fn record(&self, row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRecord> {
        // By position (the columns' order in [`keys_query`]): by name compares every name. The
        // key is read in place: it only goes into the URI's text.
        let rkey = row.get_ref(0)?.as_str()?;
        let uri = AtUri::record_with_key(self.owner, self.collection, rkey).map_err(|e| conversion(0, e))?;
        let cid = CidString::try_from(row.get::<_, String>(1)?).map_err(|e| conversion(1, e))?;
        Ok(StoredRecord { uri, cid, content: None, rendered: None })
    }

    /// The page with every record's block, in one statement ([`page_query`]).
    fn with_blocks(&self) -> rusqlite::Result<Vec<StoredRecord>> {
        let mut statement = self.connection.prepare_cached(page_sql(DbBackend::Sqlite, self.page))?;
        // Room for the whole page at once: collected from the rows' iterator, which cannot tell
        // its length, the page grew and moved six times.
        let mut records = Vec::with_capacity(self.page.limit as usize);
        let mut blocks = Blocks::new(self.page.limit as usize);
        let mut found = statement.query(self.values().as_slice())?;
        while let Some(row) = found.next()? {
            blocks.push(row.get_ref(2)?.as_blob_or_null()?);
            records.push(self.record(row)?);
        }
        blocks.into_records(&mut records);
        Ok(records)
    }

    /// The page's keys and CIDs first, then the blocks of only those records whose JSON is not
    /// kept in `rendered`, in one more statement. Should a block not be there (its record
    /// deleted by a commit between the two statements, each of which sees the database as it
    /// is when it starts), the page is read again whole, in one statement. So it is as soon as
    /// more than a quarter of the page is not kept (a first read, mostly): there the join does
    /// for less what a second statement given their CIDs would, and the records are made from
    /// its rows only, so the keys read until then cost little more than their lookups.
    fn through(&self, rendered: &RenderedRecords) -> rusqlite::Result<Vec<StoredRecord>> {
        let limit = self.page.limit as usize;
        let mut statement = self.connection.prepare_cached(keys_sql(self.page))?;
        // Each row's key and CID, copied into one buffer (no allocation per row), and its JSON
        // if kept.
        let mut text = String::with_capacity(limit * 80);
        let mut rows = Vec::with_capacity(limit);
        let mut missing = 0;
        let mut found = statement.query(self.values().as_slice())?;
        while let Some(row) = found.next()? {
            let cid = row.get_ref(1)?.as_str()?;
            let kept = rendered.get(cid);
            if kept.is_none() {
                missing += 1;
                if missing * 4 > limit {
                    drop(found);
                    return self.with_blocks();
                }
            }
            let rkey = row.get_ref(0)?.as_str()?;
            let start = text.len();
            text.push_str(rkey);
            text.push_str(cid);
            rows.push((start, start + rkey.len(), text.len(), kept));
        }
        drop(found);
        let mut records = Vec::with_capacity(rows.len());
        let mut wanted = Vec::with_capacity(missing);
        for (start, split, end, kept) in rows {
            let uri = AtUri::record_with_key(self.owner, self.collection, &text[start..split])
                .map_err(|e| conversion(0, e))?;
            let cid = CidString::try_from(text[split..end].to_owned()).map_err(|e| conversion(1, e))?;
            if kept.is_none() {
                wanted.push(records.len());
            }
            records.push(StoredRecord { uri, cid, content: None, rendered: kept });
        }
        if wanted.is_empty() {
            return Ok(records);
        }
        // CIDs are base32 text: nothing in them needs escaping in a JSON string.
        let mut cids = String::with_capacity(wanted.len() * 64 + 2);
        cids.push('[');
        for (n, &at) in wanted.iter().enumerate() {
            if n > 0 {
                cids.push(',');
            }
            cids.push('"');
            cids.push_str(records[at].cid.as_str());
            cids.push('"');
        }
        cids.push(']');
        let mut statement = self.connection.prepare_cached(BLOCKS_SQL)?;
        let mut blocks = Blocks::new(wanted.len());
        let mut places = Vec::with_capacity(wanted.len());
        let mut found = statement.query((self.did, &cids))?;
        while let Some(row) = found.next()? {
            let Some(block) = row.get_ref(1)?.as_blob_or_null()? else {
                drop(found);
                return self.with_blocks();
            };
            let place: usize = row.get(0)?;
            let at = *wanted.get(place).ok_or(rusqlite::Error::InvalidColumnIndex(place))?;
            places.push(at);
            blocks.push(Some(block));
        }
        blocks.into_places(&mut records, &places);
        Ok(records)
    }
}

/// A page's blocks in one buffer (one allocation for the page, not one per record), each a
/// slice of it once the page is read.
struct Blocks {
    bytes: Vec<u8>,
    spans: Vec<Option<std::ops::Range<usize>>>,
}

impl Blocks {
    fn new(records: usize) -> Blocks {
        Blocks { bytes: Vec::with_capacity(records * TYPICAL_BLOCK), spans: Vec::with_capacity(records) }
    }

    fn push(&mut self, block: Option<&[u8]>) {
        let span = block.map(|block| {
            self.bytes.extend_from_slice(block);
            self.bytes.len() - block.len()..self.bytes.len()
        });
        self.spans.push(span);
    }

    /// Each record its block, in the order they were pushed.
    fn into_records(self, records: &mut [StoredRecord]) {
        let bytes = Bytes::from(self.bytes);
        for (record, span) in records.iter_mut().zip(self.spans) {
            record.content = span.map(|span| bytes.slice(span));
        }
    }

    /// The records at `places` their blocks, in the order they were pushed.
    fn into_places(self, records: &mut [StoredRecord], places: &[usize]) {
        let bytes = Bytes::from(self.bytes);
        for (&at, span) in places.iter().zip(self.spans) {
            records[at].content = span.map(|span| bytes.slice(span));
        }
    }
}

/// A record row of `did`'s in `collection` from its columns' text: the key goes into the URI's
/// text, the CID is checked and kept (a page of 100 made 200 copies of text it already owned).
fn stored_record(
    did: &Did,
    collection: &Nsid,
    rkey: &str,
    cid: String,
    content: Option<Vec<u8>>,
) -> Result<StoredRecord, DbErr> {
    let content = content.map(Bytes::from);
    let uri = AtUri::record_with_key(did, collection, rkey)
        .map_err(|e| DbErr::Custom(format!("a stored record key is malformed: {e}")))?;
    let cid = CidString::try_from(cid).map_err(|e| DbErr::Custom(format!("a stored CID is malformed: {e}")))?;
    Ok(StoredRecord { uri, cid, content, rendered: None })
}

/// A column SQLite holds that is not what Aurora wrote there.
fn conversion(column: usize, error: SyntaxError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(error))
}

/// What one lookup of a record by its repository and key found.
pub enum Lookup {
    /// No account by that identifier (or one deleted).
    NoRepo,
    /// The account exists but its repository is not served (taken down or deactivated).
    Unavailable,
    /// The account, and its record if there is one (and it is not taken down).
    Found { did: Did, record: Option<StoredRecord> },
}

/// One round trip: the account `repo` names, its record at `collection`/`rkey` and the
/// record's block, joined. `by_handle` when the account is named by its handle, not its DID.
fn lookup_query(by_handle: bool, [collection, rkey, repo]: [&str; 3]) -> SelectStatement {
    // DIDs are case-sensitive; handles are stored lowercased.
    let named = match by_handle {
        false => Expr::col((actor::Entity, actor::Column::Did)).eq(repo),
        true => Expr::col((actor::Entity, actor::Column::Handle)).eq(repo),
    };
    let mut query = Query::select();
    query
        .column((actor::Entity, actor::Column::Did))
        .expr_as(Expr::col((actor::Entity, actor::Column::TakedownRef)), Alias::new("account_takedown"))
        .column((actor::Entity, actor::Column::DeactivatedAt))
        .column((record::Entity, record::Column::Uri))
        .column((record::Entity, record::Column::Cid))
        .expr_as(Expr::col((record::Entity, record::Column::TakedownRef)), Alias::new("record_takedown"))
        .column((repo_block::Entity, repo_block::Column::Content))
        .from(actor::Entity)
        .left_join(
            record::Entity,
            Expr::col((record::Entity, record::Column::Did))
                .equals((actor::Entity, actor::Column::Did))
                .and(Expr::col((record::Entity, record::Column::Collection)).eq(collection))
                .and(Expr::col((record::Entity, record::Column::Rkey)).eq(rkey)),
        )
        .left_join(
            repo_block::Entity,
            Expr::col((repo_block::Entity, repo_block::Column::Did)).equals((record::Entity, record::Column::Did)).and(
                Expr::col((repo_block::Entity, repo_block::Column::Cid)).equals((record::Entity, record::Column::Cid)),
            ),
        )
        .and_where(Expr::col((actor::Entity, actor::Column::DeletedAt)).is_null())
        .and_where(named);
    query
}

/// A stored value that does not parse as what it should be.
/// A stored value that does not parse back into its type.
pub(crate) fn malformed(what: &str, text: &str) -> DbErr {
    DbErr::Custom(format!("stored {what} {text:?} is malformed"))
}

/// The row [`lookup_query`] finds, as text and bytes.
struct LookupRow {
    did: String,
    account_takedown: Option<String>,
    deactivated_at: Option<String>,
    uri: Option<String>,
    cid: Option<String>,
    record_takedown: Option<String>,
    content: Option<Vec<u8>>,
}

impl LookupRow {
    /// The lookup of `collection`/`rkey` in the repository `repo` names. The row matched them
    /// and the account's DID, so the record's URI is made of those, not parsed back from its
    /// column (which cost getRecord more than a twentieth of its instructions).
    fn into_lookup(self, repo: &AtIdentifier, collection: &Nsid, rkey: &RecordKey) -> Result<Lookup, DbErr> {
        if self.account_takedown.is_some() || self.deactivated_at.is_some() {
            return Ok(Lookup::Unavailable);
        }
        let did: Did = match repo.as_did() {
            Some(did) if did.as_str() == self.did => did.clone(),
            _ => self.did.parse().map_err(|_| malformed("DID", &self.did))?,
        };
        let record = match (self.uri, self.cid, self.record_takedown) {
            (Some(_), Some(cid), None) => Some(StoredRecord {
                uri: AtUri::record(&did, collection, rkey),
                cid: cid.parse().map_err(|_| malformed("CID", &cid))?,
                content: self.content.map(Bytes::from),
                rendered: None,
            }),
            _ => None,
        };
        Ok(Lookup::Found { did, record })
    }
}

/// [`lookup_query`]'s SQL for each backend and kind of identifier, built once: building it
/// took two fifths of a getRecord's instructions (counted under callgrind), more than the
/// lookup itself. The text never changes; only the bound values, which [`lookup_values`] gives
/// in the order the statement binds them.
fn lookup_sql(backend: DbBackend, repo: &AtIdentifier) -> &'static str {
    static SQL: LazyLock<[String; 4]> =
        LazyLock::new(|| per_identifier(|backend, by_handle| backend.build(&lookup_query(by_handle, [""; 3])).sql));
    pick(&SQL, backend, repo)
}

/// The values [`lookup_sql`] binds, in order: the join's collection and key, then the account.
fn lookup_values<'a>(repo: &'a AtIdentifier, collection: &'a Nsid, rkey: &'a RecordKey) -> [&'a str; 3] {
    [collection.as_str(), rkey.as_str(), identifier_text(repo)]
}

/// [`lookup_query`]: on SQLite's reader connections where there are some (on this thread, see
/// [`crate::db::SqliteReader`]), else through the pool.
pub async fn find(
    db: &DatabaseConnection,
    reader: Option<&crate::db::Reader>,
    repo: &AtIdentifier,
    collection: &Nsid,
    rkey: &RecordKey,
) -> Result<Lookup, DbErr> {
    let values = lookup_values(repo, collection, rkey);
    let on_reader = |row: &rusqlite::Row<'_>| {
        // In [`lookup_query`]'s order.
        Ok(LookupRow {
            did: row.get(0)?,
            account_takedown: row.get(1)?,
            deactivated_at: row.get(2)?,
            uri: row.get(3)?,
            cid: row.get(4)?,
            record_takedown: row.get(5)?,
            content: row.get(6)?,
        })
    };
    let on_pool = |row: &sea_orm::QueryResult| {
        Ok(LookupRow {
            did: row.try_get("", "did")?,
            account_takedown: row.try_get("", "account_takedown")?,
            deactivated_at: row.try_get("", "deactivated_at")?,
            uri: row.try_get("", "uri")?,
            cid: row.try_get("", "cid")?,
            record_takedown: row.try_get("", "record_takedown")?,
            content: row.try_get("", "content")?,
        })
    };
    let sql = |backend| lookup_sql(backend, repo);
    let row = crate::db::point_read(db, reader, sql, &values, on_reader, on_pool).await?;
    row.map_or(Ok(Lookup::NoRepo), |row| row.into_lookup(repo, collection, rkey))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_account_lookup_is_the_built_statement() {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for repo in ["did:plc:abc", "alice.test"] {
                let identifier: AtIdentifier = repo.parse().expect("identifier");
                let by_handle = matches!(identifier, AtIdentifier::Handle(_));
                let built = backend.build(&active_account_query(by_handle, repo));
                assert_eq!(built.sql, active_account_sql(backend, &identifier));
                let bound: Vec<sea_orm::Value> = built.values.expect("values").0.into_iter().collect();
                assert_eq!(bound, [sea_orm::Value::from(identifier_text(&identifier))]);
            }
        }
    }

    #[test]
    fn a_cached_page_binds_its_values_where_the_built_statement_does() {
        let did: Did = "did:plc:abc".parse().expect("did");
        let collection: Nsid = "app.bsky.feed.post".parse().expect("nsid");
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for cursor in [None, Some("3kabc")] {
                for reverse in [false, true] {
                    let page = Page { cursor, reverse, limit: 50 };
                    let built = backend.build(&page_query(did.as_str(), collection.as_str(), page));
                    assert_eq!(built.sql, page_sql(backend, page), "{backend:?} {cursor:?} {reverse}");
                    let bound: Vec<sea_orm::Value> = built.values.expect("values").0.into_iter().collect();
                    assert_eq!(bound, page_values(&did, &collection, page), "{backend:?} {cursor:?} {reverse}");
                }
            }
        }
    }

    #[test]
    fn a_cached_account_page_binds_its_values_where_the_built_statement_does() {
        let collection: Nsid = "app.bsky.feed.post".parse().expect("nsid");
        for repo in ["did:plc:abc", "alice.test"] {
            let identifier: AtIdentifier = repo.parse().expect("identifier");
            let by_handle = matches!(identifier, AtIdentifier::Handle(_));
            for cursor in [None, Some("3kabc")] {
                for reverse in [false, true] {
                    let page = Page { cursor, reverse, limit: 50 };
                    let built =
                        DbBackend::Postgres.build(&account_page_query(by_handle, repo, collection.as_str(), page));
                    assert_eq!(built.sql, account_page_sql(&identifier, page), "{repo} {cursor:?} {reverse}");
                    let bound: Vec<sea_orm::Value> = built.values.expect("values").0.into_iter().collect();
                    assert_eq!(
                        bound,
                        account_page_values(&identifier, &collection, page),
                        "{repo} {cursor:?} {reverse}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_cached_lookup_binds_its_values_where_the_built_statement_does() {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for (repo, by_handle) in [("did:plc:abc", false), ("alice.test", true)] {
                let values = ["app.bsky.feed.post", "3kabc", repo];
                let built = backend.build(&lookup_query(by_handle, values));
                let identifier: AtIdentifier = repo.parse().expect("identifier");
                assert_eq!(built.sql, lookup_sql(backend, &identifier));
                let bound: Vec<sea_orm::Value> = built.values.expect("values").0.into_iter().collect();
                let expected: Vec<sea_orm::Value> =
                    values.iter().map(|value| sea_orm::Value::from(value.to_string())).collect();
                assert_eq!(bound, expected, "{backend:?}, by handle: {by_handle}");
                let (collection, rkey) = (values[0].parse().expect("nsid"), values[1].parse().expect("rkey"));
                assert_eq!(lookup_values(&identifier, &collection, &rkey), values);
            }
        }
    }
}
