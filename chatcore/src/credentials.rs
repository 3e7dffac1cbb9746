//! Credentials: argon2id password hashes, random bearer tokens (kept only as SHA-256
//! hashes), and the HMAC-SHA256 customer signature. Pure functions, no storage; all
//! comparisons of secrets are constant-time.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::store::TokenHash;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Hashes a password with argon2id (default parameters: 19 MiB, 2 passes) into a PHC
/// string. CPU-heavy (tens of milliseconds): call it off the async threads.
pub(crate) fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a password against a PHC hash. `None` for the hash runs the same work against a
/// fixed dummy hash and fails, so that an unknown officer id takes as long as a wrong
/// password.
pub(crate) fn verify_password(hash: Option<&str>, password: &str) -> bool {
    match hash {
        Some(h) => Argon2::default()
            .verify_password(password.as_bytes(), h)
            .is_ok(),
        None => {
            let _ = Argon2::default().verify_password(password.as_bytes(), dummy_hash());
            false
        }
    }
}

fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| hash_password("dummy password for timing equalisation").unwrap_or_default())
}

/// A new bearer token (256 random bits, 64 hex characters) and its hash.
pub(crate) fn new_token() -> (String, TokenHash) {
    let mut raw = [0u8; 32];
    rand::fill(&mut raw);
    let token = hex::encode(raw);
    let hash = hash_token(&token);
    (token, hash)
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> TokenHash {
    TokenHash(Sha256::digest(token.as_bytes()).into())
}

/// The signature a host application sends with a customer login when the server has a
/// customer secret: lowercase hex HMAC-SHA256(secret, customerId).
pub fn customer_signature(secret: &[u8], customer_id: &str) -> String {
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(customer_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a customer signature in constant time. Uppercase hex is accepted too.
pub(crate) fn verify_customer_signature(secret: &[u8], customer_id: &str, signature: &str) -> bool {
    let Ok(given) = hex::decode(signature) else {
        return false;
    };
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(customer_id.as_bytes());
    mac.verify_slice(&given).is_ok()
}

/// Constant-time equality of two secrets (for the admin token).
pub(crate) fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    // Compare hashes so that the length of the secret does not leak either.
    let (ha, hb) = (Sha256::digest(a), Sha256::digest(b));
    ha.ct_eq(&hb).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(Some(&h), "correct horse"));
        assert!(!verify_password(Some(&h), "wrong"));
        assert!(!verify_password(None, "correct horse"));
    }

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let (t1, h1) = new_token();
        let (t2, _) = new_token();
        assert_eq!(t1.len(), 64);
        assert_ne!(t1, t2);
        assert_eq!(hash_token(&t1), h1);
    }

    #[test]
    fn signatures_match_a_known_vector() {
        // RFC 4231 test case 2.
        let sig = customer_signature(b"Jefe", "what do ya want for nothing?");
        assert_eq!(
            sig,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify_customer_signature(
            b"Jefe",
            "what do ya want for nothing?",
            &sig
        ));
        assert!(!verify_customer_signature(b"Jefe", "someone else", &sig));
        assert!(!verify_customer_signature(b"Jefe", "x", "not hex"));
    }

    #[test]
    fn secrets_compare() {
        assert!(secrets_equal(b"abc", b"abc"));
        assert!(!secrets_equal(b"abc", b"abd"));
        assert!(!secrets_equal(b"abc", b"abcd"));
    }
}
