//! `com.atproto.server.reserveSigningKey`: a signing key created ahead of sign-up, so an account
//! moving here can name its future key in the PLC operation before the account exists. Asking
//! again for the same DID returns the same key.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};

use aurora_atproto::crypto::{KeyType, Keypair};
use aurora_generated::com::atproto::server::reserve_signing_key::{Input, Output};
use aurora_xrpc::XrpcResult;

use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::reserved_key;
use crate::keys::RESERVED_SEAL_CONTEXT;

pub async fn handle(ctx: &AppContext, input: Input) -> XrpcResult<Output> {
    let did = input.did;
    if let Some(did) = &did {
        let existing = reserved_key::Entity::find()
            .filter(reserved_key::Column::Did.eq(did))
            .one(&ctx.db)
            .await
            .map_err(internal)?;
        if let Some(row) = existing {
            return Ok(Output { signing_key: row.key_did.into_string(), extra: Default::default() });
        }
    }
    let key = Keypair::generate(KeyType::K256);
    reserved_key::Entity::insert(reserved_key::ActiveModel {
        key_did: Set(key.did_key().parse().map_err(internal)?),
        did: Set(did),
        sealed: Set(ctx.keys.seal(RESERVED_SEAL_CONTEXT, &key)),
        created_at: Set(crate::account::now()),
    })
    .exec_without_returning(&ctx.db)
    .await
    .map_err(internal)?;
    Ok(Output { signing_key: key.did_key(), extra: Default::default() })
}
