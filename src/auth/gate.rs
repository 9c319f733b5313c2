//! The per-request check that a session token is still good although it verifies: its account
//! is not taken down, the token is of the account's current generation (a
//! password change moves it on), and the app password it was opened with still exists. Account
//! state is cached for a few seconds, and forgotten at once when it changes: by this process
//! directly, and on a PostgreSQL database several servers share, by every other replica as
//! soon as its notice arrives (see [`crate::db::notices`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sea_orm::sqlx::postgres::PgPool;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, QuerySelect,
};

use aurora_atproto::syntax::Did;

use super::error::AuthError;
use crate::db::entities::{account, actor, app_password};

/// How long a looked-up state stands in for the database.
const FRESH: Duration = Duration::from_secs(5);
/// The most accounts remembered at once.
const MAX_ENTRIES: usize = 50_000;

#[derive(Clone, Debug)]
struct State {
    exists: bool,
    taken_down: bool,
    generation: i64,
    app_passwords: Vec<String>,
}

/// What a session token claims about itself.
pub struct TokenFacts<'a> {
    pub generation: i64,
    pub app_password: Option<&'a str>,
    /// Whether the method accepts a taken-down account's own session.
    pub takendown_allowed: bool,
}

#[derive(Default)]
pub struct Gate {
    states: Mutex<HashMap<Did, (Instant, State)>>,
    /// Where other replicas hear of a change (PostgreSQL only).
    replicas: Option<PgPool>,
}

impl Gate {
    /// A gate on `db`: on PostgreSQL, what it forgets every replica forgets.
    pub fn new(db: &DatabaseConnection) -> Gate {
        let replicas =
            (db.get_database_backend() == DbBackend::Postgres).then(|| db.get_postgres_connection_pool().clone());
        Gate { states: Mutex::default(), replicas }
    }

    /// Forgets what was cached of `did`, here and on every other replica (after a change to it
    /// has committed).
    pub fn forget(&self, did: &Did) {
        self.forget_here(did);
        let Some(pool) = self.replicas.clone() else { return };
        let did = did.to_string();
        // The change has committed: a replica that hears late still reads it, and one that
        // never hears (its listener reconnecting) forgets with the cache's lifetime.
        tokio::spawn(async move {
            let sent = sea_orm::sqlx::query("SELECT pg_notify($1, $2)")
                .bind(crate::db::notices::ACCOUNT)
                .bind(did)
                .execute(&pool)
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "cannot tell the other replicas of an account change");
            }
        });
    }

    fn forget_here(&self, did: &Did) {
        self.states.lock().unwrap_or_else(|p| p.into_inner()).remove(did);
    }

    fn cached(&self, did: &Did) -> Option<State> {
        let states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.get(did).filter(|(at, _)| at.elapsed() < FRESH).map(|(_, state)| state.clone())
    }

    fn remember(&self, did: &Did, state: State) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        if states.len() >= MAX_ENTRIES {
            states.retain(|_, (at, _)| at.elapsed() < FRESH);
            if states.len() >= MAX_ENTRIES {
                states.clear();
            }
        }
        states.insert(did.clone(), (Instant::now(), state));
    }

    /// Whether a verified session token of `did` may still be used. A refusal from a cached state
    /// is confirmed against the database first: the cache may predate an app password or a token
    /// generation that another request (or replica) just created.
    pub async fn check<C: ConnectionTrait>(&self, conn: &C, did: &Did, facts: TokenFacts<'_>) -> Result<(), GateError> {
        if let Some(state) = self.cached(did) {
            if verdict(&state, &facts).is_ok() {
                return Ok(());
            }
        }
        let state = load(conn, did).await?;
        self.remember(did, state.clone());
        verdict(&state, &facts)
    }
}

/// Another replica changed an account.
impl crate::db::notices::Listener for Gate {
    fn channel(&self) -> &'static str {
        crate::db::notices::ACCOUNT
    }

    fn heard(&self, payload: &str) {
        if let Ok(did) = payload.parse::<Did>() {
            self.forget_here(&did);
        }
    }

    fn missed(&self) {
        self.states.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

fn verdict(state: &State, facts: &TokenFacts<'_>) -> Result<(), GateError> {
    if !state.exists {
        // Each method answers a missing account its own way, as the reference does.
        return Ok(());
    }
    if state.taken_down && !facts.takendown_allowed {
        return Err(GateError::TakenDown);
    }
    if facts.generation < state.generation {
        return Err(GateError::Refused(AuthError::Revoked));
    }
    if facts.app_password.is_some_and(|name| !state.app_passwords.iter().any(|n| n == name)) {
        return Err(GateError::Refused(AuthError::Revoked));
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Refused(AuthError),
    #[error("the account is taken down")]
    TakenDown,
    #[error(transparent)]
    Db(#[from] DbErr),
}

async fn load<C: ConnectionTrait>(conn: &C, did: &Did) -> Result<State, DbErr> {
    let actor = actor::Entity::find_by_id(did.clone()).one(conn).await?;
    let generation: Option<i64> = account::Entity::find_by_id(did.clone())
        .select_only()
        .column(account::Column::TokenGeneration)
        .into_tuple()
        .one(conn)
        .await?;
    let app_passwords: Vec<String> = app_password::Entity::find()
        .select_only()
        .column(app_password::Column::Name)
        .filter(app_password::Column::Did.eq(did))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(State {
        exists: actor.as_ref().is_some_and(|a| a.deleted_at.is_none()) && generation.is_some(),
        taken_down: actor.is_some_and(|a| a.takedown_ref.is_some()),
        generation: generation.unwrap_or_default(),
        app_passwords,
    })
}
