//! Where a repository write's statements run: SQLite's writer connection (rusqlite, on its own
//! thread) or a transaction from the pool (PostgreSQL, or SQLite when the server has no writer
//! connection, as in a few tests). The statements themselves are built once, by the callers,
//! from the entities with sea-query, so both backends follow the schema; a backend only decides
//! how to run rows: SQLite one cached prepared statement bound row by row (each statement is a
//! function call there), the pool multi-row statements in chunks (each statement is a round
//! trip there).

use std::future::Future;
use std::sync::OnceLock;

use sea_orm::sea_query::extension::postgres::PgFunc;
use sea_orm::sea_query::{
    Alias, ArrayType, ColumnRef, CommonTableExpression, DeleteStatement, Expr, Func, InsertStatement, IntoColumnRef,
    Query, SelectStatement, SimpleExpr, SqliteQueryBuilder, UpdateStatement, Value, WithClause,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement};
use sea_query_rusqlite::{RusqliteBinder, RusqliteValue, RusqliteValues};

use crate::db::entities::repo_root;
use crate::sequencer::NewEvent;
use aurora_atproto::syntax::Did;

/// Rows per multi-row statement through the pool: few enough parameters for either database.
const CHUNK: usize = 100;
/// Values per `IN (…)` list through the pool.
const IN_LIST: usize = 500;

/// A failure of either backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("a statement on SQLite's writer connection had to wait, which it never should")]
    NotReady,
    /// The write needs more than one statement, and so a transaction (nothing was run).
    #[error("the write needs a transaction")]
    NeedsTransaction,
}

/// An insert made once for the process (each is a `static`), with its text for SQLite's
/// writer written on first use: written again for every commit, the same few texts cost
/// sea-query some 75,000 instructions a commit (`just counts`).
pub(crate) struct Insert {
    statement: InsertStatement,
    sqlite: OnceLock<String>,
}

impl Insert {
    pub(crate) fn new(statement: InsertStatement) -> Self {
        Self { statement, sqlite: OnceLock::new() }
    }

    /// The one-row statement every row binds on SQLite's writer; `first`, a row, gives the
    /// number of placeholders, which is the same for every row of one insert.
    fn sqlite_text(&self, first: &[Value]) -> &str {
        self.sqlite.get_or_init(|| {
            let first = first.iter().cloned().map(SimpleExpr::Value);
            self.statement.clone().values_panic(first).build_rusqlite(SqliteQueryBuilder).0
        })
    }
}

/// One of a group of statements that touch disjoint rows, so that they may run in any order,
/// or all at once (see [`Backend::commit`]).
pub(crate) enum Step {
    /// An insert and its rows, as [`Backend::insert`] takes them.
    Insert(&'static Insert, Vec<Vec<Value>>),
    /// A delete narrowed to each key of a column, as [`Backend::delete_each`] takes it.
    DeleteEach(Box<DeleteStatement>, ColumnRef, Vec<Value>),
    /// An update narrowed to each key of a column, as [`Backend::update_each`] takes it.
    UpdateEach(Box<UpdateStatement>, ColumnRef, Vec<Value>),
}

/// A repository root's move from the commit a batch was built on (`base`) to its last
/// (`root`, at `rev`), made only while the account is active: one statement checks both, so a
/// writer never needs a separate read first.
pub(crate) struct RootMove<'a> {
    pub did: &'a Did,
    pub root: String,
    pub rev: &'a str,
    pub indexed_at: String,
    pub base: String,
}

impl RootMove<'_> {
    pub(crate) fn statement(&self) -> UpdateStatement {
        Query::update()
            .table(repo_root::Entity)
            .value(repo_root::Column::Cid, self.root.as_str())
            .value(repo_root::Column::Rev, self.rev)
            .value(repo_root::Column::IndexedAt, self.indexed_at.as_str())
            .and_where(Expr::col(repo_root::Column::Did).eq(self.did))
            .and_where(Expr::col(repo_root::Column::Cid).eq(self.base.as_str()))
            .and_where(Expr::exists(crate::account::status::active(self.did)))
            .to_owned()
    }

    /// The values [`RootMove::statement`] binds, in the order its SQL does.
    fn values(&self) -> [Value; 7] {
        let did = || Value::from(self.did.as_str());
        [
            Value::from(self.root.as_str()),
            Value::from(self.rev),
            Value::from(self.indexed_at.as_str()),
            did(),
            Value::from(self.base.as_str()),
            // `SELECT 1` of the account's check.
            Value::from(1),
            did(),
        ]
    }
}

/// Runs the statements of a repository write inside one transaction.
pub(crate) trait Backend {
    /// Inserts `rows` (values in the order of `insert`'s columns, which has no values yet).
    fn insert(&mut self, insert: &Insert, rows: Vec<Vec<Value>>) -> impl Future<Output = Result<(), StoreError>>;
    /// Runs `delete` once for each of `keys`, narrowed to rows whose `column` is that key.
    fn delete_each<C: IntoColumnRef + Clone>(
        &mut self,
        delete: &DeleteStatement,
        column: C,
        keys: Vec<Value>,
    ) -> impl Future<Output = Result<(), StoreError>>;
    /// Runs `update` once for each of `keys`, narrowed to rows whose `column` is that key.
    fn update_each<C: IntoColumnRef + Clone>(
        &mut self,
        update: &UpdateStatement,
        column: C,
        keys: Vec<Value>,
    ) -> impl Future<Output = Result<(), StoreError>>;
    /// Runs an update; how many rows it changed.
    fn update(&mut self, update: &UpdateStatement) -> impl Future<Output = Result<u64, StoreError>>;
    /// The first column of every row `select` finds, as text.
    fn select_text(&mut self, select: &SelectStatement) -> impl Future<Output = Result<Vec<String>, StoreError>>;
    /// Every column of every row `select` finds, as text or null.
    fn select_texts(
        &mut self,
        select: &SelectStatement,
        columns: usize,
    ) -> impl Future<Output = Result<Vec<Vec<Option<String>>>, StoreError>>;
    /// Appends events with consecutive numbers in commit order; the last one's number.
    fn append_events(&mut self, events: Vec<NewEvent>) -> impl Future<Output = Result<i64, StoreError>>;
    /// Runs `steps`, in any order or all at once.
    fn run_steps(&mut self, steps: Vec<Step>) -> impl Future<Output = Result<(), StoreError>> {
        steps_in_turn(self, steps)
    }
    /// Moves a repository's root; how many rows that changed (0: refused).
    fn move_root(&mut self, root: &RootMove<'_>) -> impl Future<Output = Result<u64, StoreError>> {
        let update = root.statement();
        async move { self.update(&update).await }
    }
    /// Runs `steps`, then moves the repository's root (`root`) if it is where the steps were
    /// worked out from; if it moved, appends `events` (taken from the vector only then). The
    /// last event's number, or `None` when the root did not move.
    fn commit(
        &mut self,
        steps: Vec<Step>,
        root: &RootMove<'_>,
        events: &mut Vec<NewEvent>,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> {
        commit_in_turn(self, steps, root, events)
    }
}

/// [`Backend::run_steps`] one statement after another.
async fn steps_in_turn<B: Backend + ?Sized>(backend: &mut B, steps: Vec<Step>) -> Result<(), StoreError> {
    for step in steps {
        step.run(backend).await?;
    }
    Ok(())
}

/// [`Backend::commit`] one statement after another.
async fn commit_in_turn<B: Backend + ?Sized>(
    backend: &mut B,
    steps: Vec<Step>,
    root: &RootMove<'_>,
    events: &mut Vec<NewEvent>,
) -> Result<Option<i64>, StoreError> {
    steps_in_turn(backend, steps).await?;
    if backend.move_root(root).await? != 1 {
        return Ok(None);
    }
    backend.append_events(std::mem::take(events)).await.map(Some)
}

/// SQLite's writer connection, inside a transaction on its thread. Its futures never wait:
/// [`run_ready`] drives them there.
pub(crate) struct Sqlite<'t, 'c> {
    pub txn: &'t rusqlite::Transaction<'c>,
}

/// Drives a future that never waits (one of [`Sqlite`]'s), on the calling thread.
pub(crate) fn run_ready<T, E: From<StoreError>>(future: impl Future<Output = Result<T, E>>) -> Result<T, E> {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(result) => result,
        std::task::Poll::Pending => Err(StoreError::NotReady.into()),
    }
}

impl Sqlite<'_, '_> {
    fn run(&self, (sql, values): (String, RusqliteValues)) -> Result<u64, StoreError> {
        let mut statement = self.txn.prepare_cached(&sql)?;
        Ok(statement.execute(&*values.as_params())? as u64)
    }

    /// Runs a statement built for the first of `keys` once per key: its key condition is the
    /// last one added, so the key is its last parameter, and the other parameters stay.
    fn each_key(&self, (sql, mut values): (String, RusqliteValues), keys: Vec<Value>) -> Result<(), StoreError> {
        let mut statement = self.txn.prepare_cached(&sql)?;
        for key in keys {
            if let Some(last) = values.0.last_mut() {
                *last = RusqliteValue(key);
            }
            statement.execute(&*values.as_params())?;
        }
        Ok(())
    }
}

impl Backend for Sqlite<'_, '_> {
    async fn insert(&mut self, insert: &Insert, rows: Vec<Vec<Value>>) -> Result<(), StoreError> {
        let Some(first) = rows.first() else { return Ok(()) };
        let mut statement = self.txn.prepare_cached(insert.sqlite_text(first))?;
        for row in rows {
            let values = RusqliteValues(row.into_iter().map(RusqliteValue).collect());
            statement.execute(&*values.as_params())?;
        }
        Ok(())
    }

    async fn delete_each<C: IntoColumnRef + Clone>(
        &mut self,
        delete: &DeleteStatement,
        column: C,
        keys: Vec<Value>,
    ) -> Result<(), StoreError> {
        let Some(first) = keys.first() else { return Ok(()) };
        let built = delete.clone().and_where(Expr::col(column).eq(first.clone())).build_rusqlite(SqliteQueryBuilder);
        self.each_key(built, keys)
    }

    async fn update_each<C: IntoColumnRef + Clone>(
        &mut self,
        update: &UpdateStatement,
        column: C,
        keys: Vec<Value>,
    ) -> Result<(), StoreError> {
        let Some(first) = keys.first() else { return Ok(()) };
        let built = update.clone().and_where(Expr::col(column).eq(first.clone())).build_rusqlite(SqliteQueryBuilder);
        self.each_key(built, keys)
    }

    async fn update(&mut self, update: &UpdateStatement) -> Result<u64, StoreError> {
        self.run(update.build_rusqlite(SqliteQueryBuilder))
    }

    /// The statement's text is built once: built for every commit, the update and its `EXISTS`
    /// cost sea-query some 50,000 instructions a commit (`just counts`).
    async fn move_root(&mut self, root: &RootMove<'_>) -> Result<u64, StoreError> {
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(|| root.statement().build_rusqlite(SqliteQueryBuilder).0);
        let values = RusqliteValues(root.values().into_iter().map(RusqliteValue).collect());
        let mut statement = self.txn.prepare_cached(sql)?;
        Ok(statement.execute(&*values.as_params())? as u64)
    }

    async fn select_text(&mut self, select: &SelectStatement) -> Result<Vec<String>, StoreError> {
        let (sql, values) = select.build_rusqlite(SqliteQueryBuilder);
        let mut statement = self.txn.prepare_cached(&sql)?;
        let rows = statement.query_map(&*values.as_params(), |row| row.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn select_texts(
        &mut self,
        select: &SelectStatement,
        columns: usize,
    ) -> Result<Vec<Vec<Option<String>>>, StoreError> {
        let (sql, values) = select.build_rusqlite(SqliteQueryBuilder);
        let mut statement = self.txn.prepare_cached(&sql)?;
        let rows = statement.query_map(&*values.as_params(), |row| (0..columns).map(|i| row.get(i)).collect())?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn append_events(&mut self, events: Vec<NewEvent>) -> Result<i64, StoreError> {
        // SQLite numbers the rows itself: one writer at a time, AUTOINCREMENT in commit order.
        self.insert(crate::sequencer::insert_statement(), events.into_iter().map(NewEvent::into_row).collect()).await?;
        Ok(self.txn.last_insert_rowid())
    }
}

/// A connection from the pool: a transaction, or (on its own, [`Pooled::alone`]) the pool.
///
/// On PostgreSQL every statement's text is the same however many rows it carries: rows go as
/// one array parameter per column (`UNNEST`) and keys as one array (`= ANY`). Each statement
/// is then parsed and planned once per connection, where a text that changed with the row
/// count cost more to prepare each time than to run, and a batch of any size is one round
/// trip.
pub(crate) struct Pooled<'t, C = DatabaseTransaction> {
    conn: &'t C,
    /// Whether `conn` is a transaction; if not, a write must go as one statement.
    in_transaction: bool,
    /// On PostgreSQL, connections outside the pool for a commit that is one statement (see
    /// [`crate::db::PgReader::commit_one`]).
    direct: Option<&'t crate::db::PgReader>,
}

impl<'t> Pooled<'t> {
    pub(crate) fn new(txn: &'t DatabaseTransaction) -> Self {
        Pooled { conn: txn, in_transaction: true, direct: None }
    }
}

impl<'t> Pooled<'t, DatabaseConnection> {
    /// The pool itself: a write through it must be one statement, which commits on its own
    /// ([`Backend::commit`] on PostgreSQL); anything else fails with
    /// [`StoreError::NeedsTransaction`] before running.
    pub(crate) fn alone(db: &'t DatabaseConnection, reader: Option<&'t crate::db::Reader>) -> Self {
        let direct = match reader {
            Some(crate::db::Reader::Postgres(reader)) => Some(&**reader),
            _ => None,
        };
        Pooled { conn: db, in_transaction: false, direct }
    }
}

impl<D: ConnectionTrait> Pooled<'_, D> {
    fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    fn postgres(&self) -> bool {
        self.backend() == DbBackend::Postgres
    }

    async fn run(&self, statement: Statement) -> Result<u64, StoreError> {
        if !self.in_transaction {
            return Err(StoreError::NeedsTransaction);
        }
        Ok(self.conn.execute(statement).await?.rows_affected())
    }

    /// `insert` of `rows` as one statement with a column per array parameter, inserting only
    /// if `condition` holds, or the rows back when a column cannot be one (it mixes nulls with
    /// values, which PostgreSQL arrays of the binder cannot carry). The values are checked
    /// first and then moved, not copied.
    fn unnested(
        insert: &InsertStatement,
        rows: Vec<Vec<Value>>,
        condition: Option<&SimpleExpr>,
    ) -> Result<InsertStatement, Vec<Vec<Value>>> {
        let Some(first) = rows.first() else { return Err(rows) };
        let width = first.len();
        // Per column: all null (a typed null, repeated on every row), or one array type.
        let mut kinds: Vec<Option<ArrayType>> = Vec::with_capacity(width);
        for (i, value) in first.iter().enumerate() {
            let column = || rows.iter().map(move |row| row.get(i));
            let kind = if column().all(|v| v.is_some_and(is_null)) {
                None
            } else {
                match array_type(value) {
                    Some(kind) if column().all(|v| v.is_some_and(|v| !is_null(v) && same_kind(v, value))) => Some(kind),
                    _ => return Err(rows),
                }
            };
            kinds.push(kind);
        }
        let mut unnested = insert.clone();
        let probe = Query::select().exprs((0..width).map(|_| Expr::value(0))).to_owned();
        if rows.iter().any(|row| row.len() != width) || unnested.select_from(probe).is_err() {
            return Err(rows);
        }
        let mut columns: Vec<Vec<Value>> = (0..width).map(|_| Vec::with_capacity(rows.len())).collect();
        for row in rows {
            for (column, value) in columns.iter_mut().zip(row) {
                column.push(value);
            }
        }
        let mut select = Query::select();
        for (mut column, kind) in columns.into_iter().zip(kinds) {
            match kind {
                None => select.expr(SimpleExpr::Value(column.swap_remove(0))),
                Some(kind) => {
                    select.expr(Func::cust(Alias::new("UNNEST")).arg(Value::Array(kind, Some(Box::new(column)))))
                }
            };
        }
        select.and_where_option(condition.cloned());
        unnested.select_from(select).expect("as many columns as the probe");
        Ok(unnested)
    }

    /// The condition that `column` is one of `keys`: one array parameter on PostgreSQL.
    fn one_of<C: IntoColumnRef>(&self, column: C, keys: Vec<Value>) -> SimpleExpr {
        let kind = keys.first().and_then(array_type);
        match kind {
            Some(kind) if self.postgres() && keys.iter().all(|key| !is_null(key) && same_kind(key, &keys[0])) => {
                Expr::col(column).eq(PgFunc::any(Value::Array(kind, Some(Box::new(keys)))))
            }
            _ => Expr::col(column).is_in(keys),
        }
    }

    /// `insert` of `rows` as the statements to run, fewest first.
    fn inserts(&self, insert: &InsertStatement, rows: Vec<Vec<Value>>) -> Vec<InsertStatement> {
        if rows.is_empty() {
            return Vec::new();
        }
        let rows = if self.postgres() {
            match Self::unnested(insert, rows, None) {
                Ok(statement) => return vec![statement],
                Err(rows) => rows,
            }
        } else {
            rows
        };
        let mut statements = Vec::new();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let mut statement = insert.clone();
            for row in rows.by_ref().take(CHUNK) {
                statement.values_panic(row.into_iter().map(SimpleExpr::Value));
            }
            statements.push(statement);
        }
        statements
    }

    /// Key lists of `keys`, each for one statement: all of them at once on PostgreSQL.
    fn key_lists(&self, keys: Vec<Value>) -> Vec<Vec<Value>> {
        if keys.is_empty() {
            Vec::new()
        } else if self.postgres() {
            vec![keys]
        } else {
            keys.chunks(IN_LIST).map(<[Value]>::to_vec).collect()
        }
    }
}

fn is_null(value: &Value) -> bool {
    matches!(
        value,
        Value::Bool(None)
            | Value::SmallInt(None)
            | Value::Int(None)
            | Value::BigInt(None)
            | Value::Double(None)
            | Value::String(None)
            | Value::Bytes(None)
    )
}

/// The array type of `value`'s kind, for the types repository writes use.
fn array_type(value: &Value) -> Option<ArrayType> {
    Some(match value {
        Value::Bool(_) => ArrayType::Bool,
        Value::SmallInt(_) => ArrayType::SmallInt,
        Value::Int(_) => ArrayType::Int,
        Value::BigInt(_) => ArrayType::BigInt,
        Value::Double(_) => ArrayType::Double,
        Value::String(_) => ArrayType::String,
        Value::Bytes(_) => ArrayType::Bytes,
        _ => return None,
    })
}

fn same_kind(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

impl Step {
    /// Runs the step through `backend` on its own.
    async fn run<B: Backend + ?Sized>(self, backend: &mut B) -> Result<(), StoreError> {
        match self {
            Step::Insert(insert, rows) => backend.insert(insert, rows).await,
            Step::DeleteEach(delete, column, keys) => backend.delete_each(&delete, column, keys).await,
            Step::UpdateEach(update, column, keys) => backend.update_each(&update, column, keys).await,
        }
    }

    /// Whether the step has nothing to do.
    fn is_empty(&self) -> bool {
        match self {
            Step::Insert(_, rows) => rows.is_empty(),
            Step::DeleteEach(_, _, keys) | Step::UpdateEach(_, _, keys) => keys.is_empty(),
        }
    }
}

impl<D: ConnectionTrait> Pooled<'_, D> {
    /// The step as one `WITH` query that changes nothing unless `condition` holds, or the
    /// step back when it needs more than one statement.
    fn conditional(&self, step: Step, condition: Option<&SimpleExpr>) -> Result<CommonTableExpression, Step> {
        let table = CommonTableExpression::new;
        match step {
            Step::Insert(insert, rows) => match Self::unnested(&insert.statement, rows, condition) {
                Ok(statement) => Ok(table().query(statement).to_owned()),
                Err(rows) => Err(Step::Insert(insert, rows)),
            },
            Step::DeleteEach(mut delete, column, keys) => {
                let statement =
                    delete.and_where(self.one_of(column, keys)).and_where_option(condition.cloned()).to_owned();
                Ok(table().query(statement).to_owned())
            }
            Step::UpdateEach(mut update, column, keys) => {
                let statement =
                    update.and_where(self.one_of(column, keys)).and_where_option(condition.cloned()).to_owned();
                Ok(table().query(statement).to_owned())
            }
        }
    }

    /// Adds `steps` to `with` as `WITH` queries (`step0`, `step1`, …) conditioned on
    /// `condition`, except those that need more than one statement, which run now, on their
    /// own, inside the transaction (outside one, nothing runs and the write needs one). How
    /// many were added.
    async fn add_steps(
        &mut self,
        with: &mut WithClause,
        steps: Vec<Step>,
        condition: Option<&SimpleExpr>,
    ) -> Result<usize, StoreError> {
        let mut alone = Vec::new();
        let mut added = 0;
        for (i, step) in steps.into_iter().filter(|step| !step.is_empty()).enumerate() {
            match self.conditional(step, condition) {
                Ok(mut table) => {
                    with.cte(table.table_name(Alias::new(format!("step{i}"))).to_owned());
                    added += 1;
                }
                Err(step) if self.in_transaction => alone.push(step),
                Err(_) => return Err(StoreError::NeedsTransaction),
            }
        }
        for step in alone {
            step.run(self).await?;
        }
        Ok(added)
    }

    async fn read(&self, select: &SelectStatement) -> Result<Vec<sea_orm::QueryResult>, StoreError> {
        if !self.in_transaction {
            return Err(StoreError::NeedsTransaction);
        }
        Ok(self.conn.query_all(self.backend().build(select)).await?)
    }
}

impl<D: ConnectionTrait> Backend for Pooled<'_, D> {
    async fn insert(&mut self, insert: &Insert, rows: Vec<Vec<Value>>) -> Result<(), StoreError> {
        for statement in self.inserts(&insert.statement, rows) {
            self.run(self.backend().build(&statement)).await?;
        }
        Ok(())
    }

    async fn delete_each<C: IntoColumnRef + Clone>(
        &mut self,
        delete: &DeleteStatement,
        column: C,
        keys: Vec<Value>,
    ) -> Result<(), StoreError> {
        for keys in self.key_lists(keys) {
            let statement = delete.clone().and_where(self.one_of(column.clone(), keys)).to_owned();
            self.run(self.backend().build(&statement)).await?;
        }
        Ok(())
    }

    async fn update_each<C: IntoColumnRef + Clone>(
        &mut self,
        update: &UpdateStatement,
        column: C,
        keys: Vec<Value>,
    ) -> Result<(), StoreError> {
        for keys in self.key_lists(keys) {
            let statement = update.clone().and_where(self.one_of(column.clone(), keys)).to_owned();
            self.run(self.backend().build(&statement)).await?;
        }
        Ok(())
    }

    async fn update(&mut self, update: &UpdateStatement) -> Result<u64, StoreError> {
        self.run(self.backend().build(update)).await
    }

    async fn select_text(&mut self, select: &SelectStatement) -> Result<Vec<String>, StoreError> {
        let rows = self.read(select).await?;
        Ok(rows.iter().map(|row| row.try_get_by_index::<String>(0)).collect::<Result<_, _>>()?)
    }

    async fn select_texts(
        &mut self,
        select: &SelectStatement,
        columns: usize,
    ) -> Result<Vec<Vec<Option<String>>>, StoreError> {
        let rows = self.read(select).await?;
        let row = |row: &sea_orm::QueryResult| (0..columns).map(|i| row.try_get_by_index(i)).collect();
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    async fn append_events(&mut self, events: Vec<NewEvent>) -> Result<i64, StoreError> {
        let count = events.len() as i64;
        if !self.in_transaction {
            return Err(StoreError::NeedsTransaction);
        }
        Ok(crate::sequencer::append_all(self.conn, events).await? + count - 1)
    }

    /// On PostgreSQL the steps run as one statement, each a data-modifying `WITH` query.
    async fn run_steps(&mut self, steps: Vec<Step>) -> Result<(), StoreError> {
        if !self.postgres() {
            return steps_in_turn(self, steps).await;
        }
        let mut with = WithClause::new();
        if self.add_steps(&mut with, steps, None).await? == 0 {
            return Ok(());
        }
        let main = Query::select().expr(Expr::val(1)).to_owned();
        self.run(self.backend().build(&with.query(main))).await.map(drop)
    }

    /// On PostgreSQL the commit is one statement: the root's move and each step a
    /// data-modifying `WITH` query (all of which run, on one snapshot), the events appended
    /// after them, one round trip where there would be one per step. The steps touch disjoint
    /// rows, so none needs to see another's effect. Every step and the events are conditioned
    /// on the root having moved, so a refused commit changes nothing even outside a
    /// transaction, and the root's row is locked before any other: two replicas committing to
    /// one repository wait on that row rather than on each other's rows in turn. A step that
    /// needs more than one statement runs before, on its own, inside a transaction.
    async fn commit(
        &mut self,
        steps: Vec<Step>,
        root: &RootMove<'_>,
        events: &mut Vec<NewEvent>,
    ) -> Result<Option<i64>, StoreError> {
        if !self.postgres() {
            return commit_in_turn(self, steps, root, events).await;
        }
        // The root's move comes first: the later queries refer to it.
        let root = root.statement().returning_col(Alias::new("did")).to_owned();
        let mut with = WithClause::new();
        with.cte(CommonTableExpression::new().query(root).table_name(Alias::new("moved")).to_owned());
        let moved = Expr::cust("EXISTS (SELECT 1 FROM \"moved\")");
        self.add_steps(&mut with, steps, Some(&moved)).await?;
        let count = events.len() as i64;
        let (tables, finish) = crate::sequencer::postgres_append(std::mem::take(events), Some(moved));
        for table in tables {
            with.cte(table);
        }
        let mut main = Query::select();
        main.expr_as(Expr::cust("(SELECT COUNT(*) FROM \"moved\")"), Alias::new("moved"));
        for (expr, name) in finish {
            main.expr_as(expr, Alias::new(name));
        }
        let statement = self.backend().build(&with.query(main));
        let row = match self.direct {
            Some(direct) if !self.in_transaction => direct.commit_one(statement).await?,
            _ => self.conn.query_one(statement).await?,
        };
        let row = row.ok_or_else(|| DbErr::Custom("a commit returned no row".into()))?;
        if row.try_get::<i64>("", "moved")? != 1 {
            return Ok(None);
        }
        let first: Option<i64> = row.try_get("", "first")?;
        let first = first.ok_or_else(|| DbErr::Custom("a commit appended no events".into()))?;
        Ok(Some(first + count - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_move_binds_its_values_where_its_built_statement_does() {
        let did: Did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz".parse().expect("did");
        let root = RootMove {
            did: &did,
            root: "bafyreiroot".into(),
            rev: "3kabcdefghi22",
            indexed_at: "2026-12-07T00:00:00.000Z".into(),
            base: "bafyreibase".into(),
        };
        let (_, built) = root.statement().build_rusqlite(SqliteQueryBuilder);
        let bound: Vec<Value> = built.0.into_iter().map(|value| value.0).collect();
        assert_eq!(bound, root.values().to_vec());
    }
}
