//! Periodic upkeep of what outsiders can make the server store.

use crate::context::AppContext;

/// The most DID documents kept cached.
pub const MAX_CACHED_DID_DOCS: u64 = 50_000;

/// Sweeps the DID document cache and expired signing-key reservations; how many rows went.
pub async fn sweep_caches(ctx: &AppContext) -> Result<u64, sea_orm::DbErr> {
    let documents = ctx.resolver.sweep_cache(MAX_CACHED_DID_DOCS).await?;
    let reservations = crate::keys::sweep_reservations(&ctx.db).await?;
    Ok(documents + reservations)
}
