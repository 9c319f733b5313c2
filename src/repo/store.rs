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
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement};
use sea_query_rusqlite::{RusqliteBinder, RusqliteValue, RusqliteValues};

use crate::sequencer::NewEvent;

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
/// or all at once (see [`Backend::steps_then_update`]).
pub(crate) enum Step {
    /// An insert and its rows, as [`Backend::insert`] takes them.
    Insert(&'static Insert, Vec<Vec<Value>>),
    /// A delete narrowed to each key of a column, as [`Backend::delete_each`] takes it.
    DeleteEach(Box<DeleteStatement>, ColumnRef, Vec<Value>),
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
    /// Runs `steps`, then `update`; how many rows `update` changed.
    fn steps_then_update(
        &mut self,
        steps: Vec<Step>,
        update: &UpdateStatement,
    ) -> impl Future<Output = Result<u64, StoreError>> {
        async move {
            for step in steps {
                step.run(self).await?;
            }
            self.update(update).await
        }
    }
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

/// A transaction from the pool.
///
/// On PostgreSQL every statement's text is the same however many rows it carries: rows go as
/// one array parameter per column (`UNNEST`) and keys as one array (`= ANY`). Each statement
/// is then parsed and planned once per connection, where a text that changed with the row
/// count cost more to prepare each time than to run, and a batch of any size is one round
/// trip.
pub(crate) struct Pooled<'t> {
    pub txn: &'t DatabaseTransaction,
}

impl Pooled<'_> {
    fn backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    fn postgres(&self) -> bool {
        self.backend() == DbBackend::Postgres
    }

    async fn run(&self, statement: Statement) -> Result<u64, StoreError> {
        Ok(self.txn.execute(statement).await?.rows_affected())
    }

    /// `insert` of `rows` as one statement with a column per array parameter, or the rows back
    /// when a column cannot be one (it mixes nulls with values, which PostgreSQL arrays of
    /// the binder cannot carry). The values are checked first and then moved, not copied.
    fn unnested(insert: &InsertStatement, rows: Vec<Vec<Value>>) -> Result<InsertStatement, Vec<Vec<Value>>> {
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
            match Self::unnested(insert, rows) {
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
        }
    }
}

impl Backend for Pooled<'_> {
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
        let rows = self.txn.query_all(self.backend().build(select)).await?;
        Ok(rows.iter().map(|row| row.try_get_by_index::<String>(0)).collect::<Result<_, _>>()?)
    }

    async fn select_texts(
        &mut self,
        select: &SelectStatement,
        columns: usize,
    ) -> Result<Vec<Vec<Option<String>>>, StoreError> {
        let rows = self.txn.query_all(self.backend().build(select)).await?;
        let row = |row: &sea_orm::QueryResult| (0..columns).map(|i| row.try_get_by_index(i)).collect();
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    async fn append_events(&mut self, events: Vec<NewEvent>) -> Result<i64, StoreError> {
        let count = events.len() as i64;
        Ok(crate::sequencer::append_all(self.txn, events).await? + count - 1)
    }

    /// On PostgreSQL the steps run with the update as one statement, each step a
    /// data-modifying `WITH` query (all of which run, on one snapshot): one round trip where
    /// there would be one per step. The steps touch disjoint rows, so none needs to see
    /// another's effect. A step that needs more than one statement runs before, on its own.
    async fn steps_then_update(&mut self, steps: Vec<Step>, update: &UpdateStatement) -> Result<u64, StoreError> {
        if !self.postgres() {
            for step in steps {
                step.run(self).await?;
            }
            return self.update(update).await;
        }
        let mut with = WithClause::new();
        let mut queries = 0;
        for step in steps {
            // Each step's statements, built for running alone and as a `WITH` query.
            let statements: Vec<(Statement, CommonTableExpression)> = match step {
                Step::Insert(insert, rows) => self
                    .inserts(&insert.statement, rows)
                    .into_iter()
                    .map(|statement| {
                        (self.backend().build(&statement), CommonTableExpression::new().query(statement).to_owned())
                    })
                    .collect(),
                Step::DeleteEach(delete, column, keys) => self
                    .key_lists(keys)
                    .into_iter()
                    .map(|keys| {
                        let statement = delete.clone().and_where(self.one_of(column.clone(), keys)).to_owned();
                        (self.backend().build(&statement), CommonTableExpression::new().query(statement).to_owned())
                    })
                    .collect(),
            };
            if statements.len() > 1 {
                for (statement, _) in statements {
                    self.run(statement).await?;
                }
                continue;
            }
            for (_, mut table) in statements {
                table.table_name(Alias::new(format!("step{queries}")));
                with.cte(table);
                queries += 1;
            }
        }
        if queries == 0 {
            return self.update(update).await;
        }
        self.run(self.backend().build(&with.query(update.clone()))).await
    }
}
