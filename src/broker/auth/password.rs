//! Password hashes as RabbitMQ stores them: `base64(salt ++ H(salt ++
//! password))` with a 4-byte random salt, H being SHA-256
//! (`rabbit_password_hashing_sha256`, RabbitMQ's default) or SHA-512
//! (`rabbit_password_hashing_sha512`). A hash exported from RabbitMQ
//! (`rabbitmqctl export_definitions`) verifies unchanged. An empty hash
//! (RabbitMQ's blank password) never verifies.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256, Sha512};

pub const SHA256: &str = "rabbit_password_hashing_sha256";
pub const SHA512: &str = "rabbit_password_hashing_sha512";

/// Salt length, as RabbitMQ's.
const SALT_LEN: usize = 4;

/// Whether Warren can verify hashes of this algorithm.
pub fn supported(algorithm: &str) -> bool {
    algorithm == SHA256 || algorithm == SHA512
}

fn digest(algorithm: &str, salt: &[u8], password: &[u8]) -> Option<Vec<u8>> {
    Some(match algorithm {
        SHA256 => Sha256::new()
            .chain_update(salt)
            .chain_update(password)
            .finalize()
            .to_vec(),
        SHA512 => Sha512::new()
            .chain_update(salt)
            .chain_update(password)
            .finalize()
            .to_vec(),
        _ => return None,
    })
}

/// The hash of `password` with `salt` (4 bytes), base64, as RabbitMQ
/// writes it.
pub fn hash_with_salt(algorithm: &str, salt: [u8; SALT_LEN], password: &str) -> Option<String> {
    let mut raw = salt.to_vec();
    raw.extend(digest(algorithm, &salt, password.as_bytes())?);
    Some(STANDARD.encode(raw))
}

/// A new SHA-256 hash of `password` with a random salt. An empty password
/// gives the empty hash: no password login, as RabbitMQ.
pub fn hash(password: &str) -> String {
    if password.is_empty() {
        return String::new();
    }
    let mut salt = [0u8; SALT_LEN];
    if getrandom::getrandom(&mut salt).is_err() {
        // No entropy source: a salt from the clock still differs per hash.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u32;
        salt = t.to_le_bytes();
    }
    hash_with_salt(SHA256, salt, password).expect("sha256 is supported")
}

/// Whether `password` matches `hash` (constant time in the digest).
pub fn verify(algorithm: &str, hash: &str, password: &str) -> bool {
    let Ok(raw) = STANDARD.decode(hash.as_bytes()) else {
        return false;
    };
    if raw.len() <= SALT_LEN {
        return false;
    }
    let (salt, expected) = raw.split_at(SALT_LEN);
    let Some(actual) = digest(algorithm, salt, password.as_bytes()) else {
        return false;
    };
    actual.len() == expected.len()
        && actual
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Whether `hash` is well-formed base64 of a salt and a digest of
/// `algorithm` (or empty: no password).
pub fn well_formed(algorithm: &str, hash: &str) -> bool {
    if hash.is_empty() {
        return true;
    }
    let len = match algorithm {
        SHA256 => 32,
        SHA512 => 64,
        _ => return false,
    };
    STANDARD
        .decode(hash.as_bytes())
        .is_ok_and(|raw| raw.len() == SALT_LEN + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_exported_from_rabbitmq_verifies() {
        // `rabbitmqctl export_definitions` of RabbitMQ 3.10.8, user with
        // password "pw2".
        let h = "UmdEupYZJDYhVToXF7tWXJi3wvc7L8GxCDxJNyYYt9mHfG3e";
        assert!(well_formed(SHA256, h));
        assert!(verify(SHA256, h, "pw2"));
        assert!(!verify(SHA256, h, "pw1"));
        assert!(!verify(SHA512, h, "pw2"));
    }

    #[test]
    fn new_hashes_are_salted_and_verify() {
        let a = hash("secret");
        let b = hash("secret");
        assert_ne!(a, b, "random salt");
        assert!(verify(SHA256, &a, "secret"));
        assert!(verify(SHA256, &b, "secret"));
        assert!(!verify(SHA256, &a, "Secret"));
        assert!(well_formed(SHA256, &a));
        let salt = [1, 2, 3, 4];
        assert_eq!(
            hash_with_salt(SHA256, salt, "x"),
            hash_with_salt(SHA256, salt, "x")
        );
        let h512 = hash_with_salt(SHA512, salt, "x").unwrap();
        assert!(verify(SHA512, &h512, "x"));
    }

    #[test]
    fn empty_and_garbage_hashes_never_verify() {
        assert_eq!(hash(""), "");
        assert!(!verify(SHA256, "", ""));
        assert!(!verify(SHA256, "not base64!", "x"));
        assert!(!verify(SHA256, "AAAA", "x"));
        assert!(!verify("rabbit_password_hashing_md5", &hash("x"), "x"));
        assert!(!well_formed(SHA256, "AAAA"));
    }
}
