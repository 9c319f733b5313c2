//! Point reads on PostgreSQL without the pool's round trip on return. sqlx's pool tests every
//! connection as it comes back (a `Sync` and the server's answer, on a task of its own) even
//! with testing at checkout turned off, so each pooled statement cost two round trips: two
//! sends, two wake-ups of the server's backend and of ours. The hottest reads (a record by its
//! key, a page of records, an account, a repository export) run here instead, on connections
//! kept in a small stack and handed back as soon as their statement's answer is read; so does
//! a repository commit that is one statement ([`PgReader::commit_one`]), though never twice.
//!
//! A connection is handed back only after a statement ended cleanly (its rows read, or an error
//! the server reported, after which the server is ready again). One dropped mid-statement (the
//! request was cancelled) or broken (the server restarted) is closed instead; a read that finds
//! a kept connection broken is tried once more on a new one, which is safe for reads.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection, PgDatabaseError, PgRow, PgSeverity};
use sea_orm::sqlx::{self, ConnectOptions, Connection};
use sea_orm::{DbErr, QueryResult, RuntimeErr};
use sea_query_binder::SqlxValues;
use tokio::sync::Semaphore;

/// Connections kept between reads.
const MAX_IDLE: usize = 8;

/// Connections open at once: beside the pool's sixteen, so one server holds at most two dozen
/// of PostgreSQL's connections (a hundred by default) and several replicas fit.
const MAX_OPEN: usize = 8;

/// How long a read waits for a connection (its turn, or a new one) before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections to the server's PostgreSQL database for point reads.
pub struct PgReader {
    options: PgConnectOptions,
    idle: Mutex<Vec<PgConnection>>,
    open: Semaphore,
}

/// How many rows a read wants.
#[derive(Clone, Copy)]
enum Rows {
    AtMostOne,
    All,
}

impl PgReader {
    /// Readers of the database at `url`; `None` unless it is a PostgreSQL URL.
    pub fn open(url: &str) -> Option<PgReader> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return None;
        }
        let options: PgConnectOptions = url.parse().ok()?;
        // As the pool's statements: none logged but the slow ones, never with their values.
        let options = options
            .log_statements(log::LevelFilter::Off)
            .log_slow_statements(log::LevelFilter::Warn, super::SLOW_STATEMENT);
        Some(PgReader { options, idle: Mutex::new(Vec::new()), open: Semaphore::new(MAX_OPEN) })
    }

    /// The one row (if any) `sql` finds, binding `values` in order.
    pub async fn fetch_optional(&self, sql: &str, values: sea_orm::sea_query::Values) -> Result<Option<PgRow>, DbErr> {
        Ok(self.fetch(sql, values, Rows::AtMostOne).await?.pop())
    }

    /// Every row `sql` finds, binding `values` in order.
    pub async fn fetch_all(&self, sql: &str, values: sea_orm::sea_query::Values) -> Result<Vec<PgRow>, DbErr> {
        self.fetch(sql, values, Rows::All).await
    }

    /// `statement`, a write that is one statement and commits on its own, and the one row it
    /// answers. Not tried again: a connection that broke mid-statement leaves it unknown
    /// whether the write landed, which the caller must find out (as through the pool).
    pub async fn commit_one(&self, statement: sea_orm::Statement) -> Result<Option<QueryResult>, DbErr> {
        let values = statement.values.unwrap_or_else(|| sea_orm::sea_query::Values(Vec::new()));
        let mut checkout = self.checkout().await?;
        let Some(connection) = checkout.connection() else { return Ok(None) };
        let result = sqlx::query_with(&statement.sql, SqlxValues(values)).fetch_optional(connection).await;
        if !result.as_ref().err().is_some_and(leaves_connection_unusable) {
            checkout.keep();
        }
        Ok(result.map_err(|e| DbErr::Query(RuntimeErr::SqlxError(e)))?.map(QueryResult::from))
    }

    /// One of the connections, for reads of more than one statement (a transaction's
    /// snapshot) or of unbounded rows, streamed. It comes back for the next read only through
    /// [`Checkout::keep`], once the read succeeded; dropped, it closes, since it may be
    /// mid-transaction or mid-answer.
    pub async fn checkout(&self) -> Result<Checkout<'_>, DbErr> {
        let turn = self.turn().await?;
        let kept = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let connection = match kept {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        Ok(Checkout { reader: self, connection: Some(connection), _turn: turn })
    }

    async fn turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>, DbErr> {
        tokio::time::timeout(ACQUIRE_TIMEOUT, self.open.acquire())
            .await
            .map_err(|_| DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout))?
            .map_err(|_| DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::ConnectionClosed))
    }

    async fn connect(&self) -> Result<PgConnection, DbErr> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.options.connect())
            .await
            .map_err(|_| DbErr::Conn(RuntimeErr::Internal("connecting to PostgreSQL timed out".into())))?
            .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(e)))
    }

    async fn fetch(&self, sql: &str, values: sea_orm::sea_query::Values, rows: Rows) -> Result<Vec<PgRow>, DbErr> {
        let _turn = self.turn().await?;
        let kept = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        if let Some(connection) = kept {
            match self.run(connection, sql, values.clone(), rows).await {
                Err(Failed { error, broken: true }) => {
                    tracing::debug!(%error, "a kept PostgreSQL connection failed; reading on a new one");
                }
                done => return done.map_err(|failed| failed.error),
            }
        }
        let connection = self.connect().await?;
        self.run(connection, sql, values, rows).await.map_err(|failed| failed.error)
    }

    /// `sql` on `connection`, which comes back to the stack if the statement ended cleanly.
    async fn run(
        &self,
        connection: PgConnection,
        sql: &str,
        values: sea_orm::sea_query::Values,
        rows: Rows,
    ) -> Result<Vec<PgRow>, Failed> {
        // A read cancelled mid-statement drops `connection` with its future, which closes it
        // rather than keeping one with an answer half read.
        let mut connection = connection;
        let query = sqlx::query_with(sql, SqlxValues(values));
        let result = match rows {
            Rows::AtMostOne => query.fetch_optional(&mut connection).await.map(|row| row.into_iter().collect()),
            Rows::All => query.fetch_all(&mut connection).await,
        };
        let broken = result.as_ref().err().is_some_and(leaves_connection_unusable);
        match broken {
            true => drop(connection),
            false => self.keep(connection),
        }
        result.map_err(|error| Failed { error: DbErr::Query(RuntimeErr::SqlxError(error)), broken })
    }

    fn keep(&self, connection: PgConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(connection);
            return;
        }
        drop(idle);
        // Ended politely, so the server does not log a lost client.
        tokio::spawn(async move {
            let _ = connection.close().await;
        });
    }
}

/// A connection taken from a [`PgReader`] by [`PgReader::checkout`].
pub struct Checkout<'a> {
    reader: &'a PgReader,
    /// Taken only by [`Checkout::keep`], which consumes the checkout.
    connection: Option<PgConnection>,
    _turn: tokio::sync::SemaphorePermit<'a>,
}

impl Checkout<'_> {
    /// The connection, for statements.
    pub fn connection(&mut self) -> Option<&mut PgConnection> {
        self.connection.as_mut()
    }

    /// Gives the connection back for the next read: call it only after the read ended cleanly.
    pub fn keep(mut self) {
        if let Some(connection) = self.connection.take() {
            self.reader.keep(connection);
        }
    }
}

/// Whether `error` leaves its connection unfit for another statement: all but an error the
/// server reported for the statement alone, after which it is ready again. A fatal one (the
/// backend was terminated, the server is shutting down) ends the session.
fn leaves_connection_unusable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(reported) => reported
            .try_downcast_ref::<PgDatabaseError>()
            .is_none_or(|reported| matches!(reported.severity(), PgSeverity::Fatal | PgSeverity::Panic)),
        _ => true,
    }
}

/// A read that failed, and whether its connection is to blame.
struct Failed {
    error: DbErr,
    broken: bool,
}
