//! Password hashing. scrypt (memory-hard) with the reference PDS's parameters and storage
//! format, `<salt hex>:<hash hex>`, so account tables carry over between the two.

use rand::RngCore;
use sha2::{Digest, Sha256};

use aurora_atproto::syntax::Did;

const KEY_LEN: usize = 64;

fn params() -> scrypt::Params {
    // N = 2^14, r = 8, p = 1: Node's defaults, which the reference uses.
    scrypt::Params::new(14, 8, 1, KEY_LEN).expect("constant scrypt parameters are valid")
}

fn derive(password: &str, salt: &str) -> String {
    let mut out = [0u8; KEY_LEN];
    // The reference feeds the salt's hex text (not its bytes) to scrypt.
    scrypt::scrypt(password.as_bytes(), salt.as_bytes(), &params(), &mut out).expect("output length is valid");
    hex::encode(out)
}

pub use super::hash_pool::Busy;
use super::hash_pool::HashPool;

/// A new hash with a random salt, computed on the hashing pool.
pub async fn hash(password: String) -> Result<String, Busy> {
    HashPool::run(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = hex::encode(salt);
        let hash = derive(&password, &salt);
        format!("{salt}:{hash}")
    })
    .await
}

/// Whether `password` matches `stored`, compared in constant time.
pub async fn verify(password: String, stored: String) -> Result<bool, Busy> {
    HashPool::run(move || {
        let Some((salt, expected)) = stored.split_once(':') else { return false };
        let actual = derive(&password, salt);
        crate::auth::constant_time_eq(actual.as_bytes(), expected.as_bytes())
    })
    .await
}

/// Spends the time a failed sign-in spends on a known account (the password, then the app
/// passwords), so an unknown account cannot be told apart from a wrong password by timing.
pub async fn verify_nothing(password: String) -> Result<(), Busy> {
    HashPool::run(move || {
        let zero_salt = "0".repeat(32);
        let _ = derive(&password, &zero_salt);
        let _ = derive(&password, &zero_salt[..32]);
    })
    .await
}

/// App passwords are hashed with a salt derived from the DID, so a login can find the matching
/// one by recomputing the hash.
pub async fn hash_app_password(did: &Did, password: String) -> Result<String, Busy> {
    let salt = hex::encode(&Sha256::digest(did.as_str().as_bytes())[..16]);
    HashPool::run(move || derive(&password, &salt)).await
}

/// A new app password: 16 characters of lowercase base32 as `xxxx-xxxx-xxxx-xxxx`.
pub fn new_app_password() -> String {
    let chars = random_base32(16);
    chars.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("-")
}

/// `len` random characters of lowercase RFC 4648 base32.
pub fn random_base32(len: usize) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| ALPHABET[(b & 31) as usize] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_hash_only() {
        let stored = hash("correct horse".into()).await.expect("hash");
        assert!(verify("correct horse".into(), stored.clone()).await.expect("verify"));
        assert!(!verify("wrong horse".into(), stored.clone()).await.expect("verify"));
        assert!(!verify("correct horse".into(), "garbage".into()).await.expect("verify"));
        assert_ne!(hash("correct horse".into()).await.expect("hash"), stored, "salts differ");
    }

    #[test]
    fn the_hash_matches_the_reference_format() {
        // scrypt over a hex-text salt, hex output: the reference stores `<salt>:<hash>`.
        let hash = derive("password", "00112233445566778899aabbccddeeff");
        assert_eq!(hash.len(), 128);
    }

    #[test]
    fn app_passwords_have_four_groups_of_four() {
        let password = new_app_password();
        assert_eq!(password.len(), 19);
        assert!(password
            .split('-')
            .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))));
    }
}
