//! Handwritten implementations of the generated service traits. Paths mirror the NSIDs:
//! `com.atproto.repo.createRecord` is implemented under `api/com/atproto/repo/`.

pub mod com;

use std::sync::Arc;

use crate::context::AppContext;

/// The object the generated routes call; it implements every served namespace's trait.
pub struct Api {
    pub ctx: Arc<AppContext>,
}

impl Api {
    pub fn new(ctx: Arc<AppContext>) -> Self {
        Self { ctx }
    }
}
