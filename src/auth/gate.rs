//! The per-request check that a session token is still good although it verifies: its account
//! is not taken down, the token is of the account's current generation (a
//! password change moves it on), and the app password it was opened with still exists. Account
//! state is cached for a few seconds, and forgotten at once when this process changes it; other
//! replicas see a change within the cache's lifetime.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

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
}

impl Gate {
    /// Forgets what was cached of `did` (after this process changed it).
    pub fn forget(&self, did: &Did) {
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
