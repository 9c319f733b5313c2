//! Repository signing keys at rest. Each account's private key is sealed with
//! ChaCha20-Poly1305 under a key-encryption key derived from the PDS rotation key, so a copy of
//! the database alone reveals no signing key; the DID is bound in as associated data so a
//! sealed key cannot be moved to another account.

use aurora_atproto::crypto::{KeyType, Keypair};
use aurora_atproto::syntax::Did;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;
const CONTEXT: &[u8] = b"aurora-locus signing-key seal v1";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("sealed key is malformed or was sealed under another server secret")]
    Unseal,
    #[error("stored key type {0:?} is unknown")]
    KeyType(String),
    #[error("stored key is invalid: {0}")]
    Invalid(String),
    #[error("{0} has no signing key")]
    Missing(Did),
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
}

/// Seals and unseals signing keys.
#[derive(Clone)]
pub struct KeyVault {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyVault(..)")
    }
}

impl KeyVault {
    /// A vault whose key-encryption key is derived from `secret` (the rotation key's hex).
    pub fn new(secret: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(CONTEXT);
        hasher.update(secret.as_bytes());
        let kek: [u8; 32] = hasher.finalize().into();
        Self { cipher: ChaCha20Poly1305::new(Key::from_slice(&kek)) }
    }

    /// `nonce || ciphertext` of the key's private bytes, bound to `did`.
    /// `owner` (the account's DID, or [`RESERVED_SEAL_CONTEXT`]) is bound in as associated data.
    pub fn seal(&self, owner: &str, key: &Keypair) -> Vec<u8> {
        self.seal_bytes(owner, key.to_private_bytes().as_slice())
    }

    /// `nonce || ciphertext` of any secret, with `owner` bound in as associated data.
    pub fn seal_bytes(&self, owner: &str, secret: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption fails only for inputs beyond ChaCha20-Poly1305's 256 GiB limit.
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret, aad: owner.as_bytes() })
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    /// The secret [`KeyVault::seal_bytes`] sealed for `owner`.
    pub fn unseal_bytes(&self, owner: &str, sealed: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, KeyError> {
        if sealed.len() <= NONCE_LEN {
            return Err(KeyError::Unseal);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let secret = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: owner.as_bytes() })
            .map_err(|_| KeyError::Unseal)?;
        Ok(zeroize::Zeroizing::new(secret))
    }

    pub fn unseal(&self, owner: &str, key_type: &str, sealed: &[u8]) -> Result<Keypair, KeyError> {
        let key_type = parse_key_type(key_type)?;
        let secret = self.unseal_bytes(owner, sealed)?;
        Keypair::from_private_bytes(key_type, &secret).map_err(|e| KeyError::Invalid(e.to_string()))
    }
}

/// An account's signing key, unsealed for one use.
pub async fn signing_key(ctx: &crate::context::AppContext, did: &Did) -> Result<Keypair, KeyError> {
    use sea_orm::EntityTrait;
    let row = crate::db::entities::signing_key::Entity::find_by_id(did.to_owned())
        .one(&ctx.db)
        .await?
        .ok_or_else(|| KeyError::Missing(did.clone()))?;
    ctx.keys.unseal(did.as_str(), &row.key_type, &row.sealed)
}

pub fn key_type_name(key_type: KeyType) -> &'static str {
    match key_type {
        KeyType::K256 => "k256",
        KeyType::P256 => "p256",
    }
}

fn parse_key_type(name: &str) -> Result<KeyType, KeyError> {
    match name {
        "k256" => Ok(KeyType::K256),
        "p256" => Ok(KeyType::P256),
        other => Err(KeyError::KeyType(other.to_owned())),
    }
}

/// Reserved keys (`reserveSigningKey`) are sealed under this associated data, since their
/// account may not exist yet.
pub const RESERVED_SEAL_CONTEXT: &str = "reserved";

/// How long a reserved signing key waits for its account (an account moving here creates
/// itself within minutes of reserving one).
pub const RESERVATION_TTL_SECS: i64 = 48 * 60 * 60;

/// Removes reservations no account claimed within [`RESERVATION_TTL_SECS`]: the method is
/// public, so unclaimed keys must not pile up.
pub async fn sweep_reservations(db: &sea_orm::DatabaseConnection) -> Result<u64, sea_orm::DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let cutoff = aurora_atproto::syntax::Datetime::from_unix_micros(
        (crate::auth::now_secs() - RESERVATION_TTL_SECS).saturating_mul(1_000_000),
    );
    let removed = crate::db::entities::reserved_key::Entity::delete_many()
        .filter(crate::db::entities::reserved_key::Column::CreatedAt.lt(cutoff.as_str()))
        .exec(db)
        .await?;
    Ok(removed.rows_affected)
}

/// The key reserved for `did`, removed from the reservations (it becomes the account's key).
pub async fn take_reserved(ctx: &crate::context::AppContext, did: &Did) -> Result<Option<Keypair>, KeyError> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    use crate::db::entities::reserved_key;
    let Some(row) = reserved_key::Entity::find().filter(reserved_key::Column::Did.eq(did)).one(&ctx.db).await? else {
        return Ok(None);
    };
    let key = ctx.keys.unseal(RESERVED_SEAL_CONTEXT, "k256", &row.sealed)?;
    reserved_key::Entity::delete_by_id(row.key_did).exec(&ctx.db).await?;
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_unseals_to_the_same_key_for_the_same_account_only() {
        let vault = KeyVault::new("00".repeat(32).as_str());
        let key = Keypair::generate(KeyType::K256);
        let sealed = vault.seal("did:plc:alice", &key);
        assert!(!sealed.windows(32).any(|w| w == key.to_private_bytes().as_slice()), "never stored in the clear");
        let back = vault.unseal("did:plc:alice", "k256", &sealed).expect("unseal");
        assert_eq!(back.did_key(), key.did_key());
        assert!(vault.unseal("did:plc:mallory", "k256", &sealed).is_err());
        assert!(KeyVault::new("11".repeat(32).as_str()).unseal("did:plc:alice", "k256", &sealed).is_err());
    }
}
