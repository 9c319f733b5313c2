//! Private keys on disk: one line of hex, readable only by the owner.

use std::fs;
use std::io::Write;
use std::path::Path;

use zeroize::Zeroizing;

use super::{CryptoError, KeyType, Keypair};

/// Writes the key's secret scalar as hex to `path`, replacing any file there. On Unix the file
/// is created with mode 0600, and an existing file is narrowed to 0600, before the secret is
/// written, so the key is never readable by others even briefly.
pub fn write_private_key_file(path: impl AsRef<Path>, keypair: &Keypair) -> Result<(), CryptoError> {
    let path = path.as_ref();
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    let mut line = Zeroizing::new(hex::encode(&keypair.to_private_bytes()[..]));
    line.push('\n');
    file.write_all(line.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Reads a key written by [`write_private_key_file`] (or any file holding the 64 hex digits of
/// a secret scalar, surrounding whitespace allowed). The file does not record the curve, so the
/// caller names it.
pub fn read_private_key_file(path: impl AsRef<Path>, key_type: KeyType) -> Result<Keypair, CryptoError> {
    let text = Zeroizing::new(fs::read_to_string(path)?);
    let bytes = Zeroizing::new(
        hex::decode(text.trim()).map_err(|_| CryptoError::InvalidPrivateKey("the key file is not hex"))?,
    );
    Keypair::from_private_bytes(key_type, &bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("aurora-key-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_key_written_to_a_file_reads_back_the_same() {
        let path = temp_path("round-trip");
        let keypair = Keypair::generate(KeyType::K256);
        write_private_key_file(&path, &keypair).unwrap();
        let restored = read_private_key_file(&path, KeyType::K256).unwrap();
        fs::remove_file(&path).unwrap();
        assert_eq!(restored.public_key(), keypair.public_key());
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_readable_only_by_its_owner() {
        use std::os::unix::fs::PermissionsExt;

        let path = temp_path("mode");
        fs::write(&path, "previous contents").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_private_key_file(&path, &Keypair::generate(KeyType::P256)).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        fs::remove_file(&path).unwrap();
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_file_that_is_not_hex_is_rejected() {
        let path = temp_path("garbage");
        fs::write(&path, "not a key").unwrap();
        let result = read_private_key_file(&path, KeyType::K256);
        fs::remove_file(&path).unwrap();
        assert!(matches!(result, Err(CryptoError::InvalidPrivateKey(_))));
    }
}
