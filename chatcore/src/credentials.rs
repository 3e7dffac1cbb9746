//! Credentials: argon2id password hashes, random bearer tokens (kept only as SHA-256
//! hashes), the HMAC-SHA256 customer signature, and the customer identity token (a JWT,
//! HS256 with the customer secret, that expires). Pure functions, no storage; all
//! comparisons of secrets are constant-time; time is passed in, never read here.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::MAX_NAME_ID_LEN;
use crate::model::Timestamp;
use crate::store::TokenHash;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The working memory of argon2id (19 MiB with the default parameters), kept between
/// hashes and reused. A fresh block per hash, freed after it, is what glibc's malloc
/// handles worst: freeing a large mapped block raises its mmap threshold, so the next
/// blocks come from its arenas and stay there. 200 officers created and logged in
/// grew a server from 11 MiB to 1.3 GiB that way; with the memory reused, to 50 MiB.
#[derive(Default)]
pub(crate) struct HashMemory(Vec<Block>);

impl HashMemory {
    /// The first `count` blocks, grown (never shrunk) to hold them.
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.0.len() < count {
            // Replaced rather than resized: nothing in it is worth copying.
            self.0 = vec![Block::default(); count];
        }
        &mut self.0[..count]
    }
}

/// Hashes a password with argon2id (default parameters: 19 MiB, 2 passes) into a PHC
/// string, in `memory`. CPU-heavy (tens of milliseconds): call it off the async threads.
pub(crate) fn hash_password(password: &str, memory: &mut HashMemory) -> Result<String, String> {
    let argon = Argon2::default();
    let params = argon.params().clone();
    let salt = Salt::generate();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut out,
            memory.blocks(params.block_count()),
        )
        .map_err(|e| e.to_string())?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(hash.to_string())
}

/// Checks a password against a PHC hash, in `memory`. `None` for the hash runs the same
/// work against a fixed dummy hash and fails, so that an unknown officer id takes as long
/// as a wrong password.
pub(crate) fn verify_password(hash: Option<&str>, password: &str, memory: &mut HashMemory) -> bool {
    match hash {
        Some(h) => verifies(h, password, memory),
        None => {
            let dummy = dummy_hash(memory);
            let _ = verifies(dummy, password, memory);
            false
        }
    }
}

/// What argon2's own `verify_password` does, in our memory: the hash's algorithm,
/// version, parameters and salt applied to the password, and the outputs compared in
/// constant time (`Output`'s equality).
fn verifies(hash: &str, password: &str, memory: &mut HashMemory) -> bool {
    let Ok(hash) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let blocks = memory.blocks(params.block_count());
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
        .is_ok()
        && Output::new(&out).is_ok_and(|computed| &computed == expected)
}

fn dummy_hash(memory: &mut HashMemory) -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password("dummy password for timing equalisation", memory).unwrap_or_default()
    })
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

/// The claims of a customer identity token: a JWT signed with HS256 and the customer
/// secret by the host application, which knows who its customer is. Made with
/// [`customer_identity_token`]; checked by `ChatService::customer_login_with_identity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityClaims {
    /// The customer id (`sub`).
    pub sub: String,
    /// Expiry, in whole seconds since the Unix epoch (`exp`); required.
    pub exp: u64,
    /// The officer a new chat goes to (`officerId`); on a server with a customer secret
    /// this is the only way a login can name one.
    #[serde(rename = "officerId", default, skip_serializing_if = "Option::is_none")]
    pub officer_id: Option<String>,
    /// The customer's name, shown to officers (`name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Clock skew allowed between the host application that issues identity tokens and this
/// server, on `exp` (and `nbf` when present).
pub const IDENTITY_LEEWAY_SECS: u64 = 30;

/// A customer identity token: `claims` as a JWT signed with HS256 and the customer
/// secret, as a host application makes one (in any language; this is the Rust one).
pub fn customer_identity_token(secret: &[u8], claims: &IdentityClaims) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("HS256 signs with a key of any length")
}

/// The claims as read, each checked below: a missing or mistyped one is a refusal, not
/// a deserialization error with a less useful message.
#[derive(Deserialize)]
struct RawClaims {
    sub: Option<String>,
    exp: Option<u64>,
    nbf: Option<u64>,
    #[serde(rename = "officerId")]
    officer_id: Option<String>,
    name: Option<String>,
}

/// Verifies a customer identity token at time `now`: HS256 only (`alg: none` and every
/// other algorithm are refused), signed with `secret`, with a `sub` and an `exp` that has
/// not passed (allowing [`IDENTITY_LEEWAY_SECS`]), and an `nbf`, if any, that has. `iss`
/// and `aud` are not checked: the key is this server's own secret. Every refusal is
/// [`Error::InvalidIdentity`] with the reason.
pub(crate) fn verify_identity_token(
    secret: &[u8],
    token: &str,
    now: Timestamp,
) -> Result<IdentityClaims> {
    use jsonwebtoken::errors::ErrorKind as Jwt;
    // The customer secret also keys the signature of customer ids, and a JWT's signature
    // is the same HMAC-SHA256, over `header.payload`: a signed customer id that reads as
    // `header.payload` would make a valid token, one that may never expire. Customer ids
    // are at most 64 characters, so a token whose signed part is longer never is one.
    let signed_part = token.rsplit_once('.').map_or(token, |(signed, _)| signed);
    if signed_part.len() <= MAX_NAME_ID_LEN {
        return Err(Error::InvalidIdentity(
            "it is too short to be told apart from a signed customer id (its header and \
             claims must be over 64 characters, as every JWT library makes them)",
        ));
    }
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    // Time is checked below on the service's clock, not the system's.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let key = jsonwebtoken::DecodingKey::from_secret(secret);
    let raw = match jsonwebtoken::decode::<RawClaims>(token, &key, &validation) {
        Ok(data) => data.claims,
        Err(e) => {
            return Err(Error::InvalidIdentity(match e.kind() {
                Jwt::InvalidSignature => "its signature does not verify with the customer secret",
                Jwt::InvalidAlgorithm | Jwt::InvalidAlgorithmName => "only HS256 is accepted",
                Jwt::MissingRequiredClaim(_) => {
                    "the claims `sub` (a string) and `exp` are required"
                }
                _ => "it is not a well-formed HS256 JWT whose claims have the expected types",
            }));
        }
    };
    let (Some(sub), Some(exp)) = (raw.sub, raw.exp) else {
        return Err(Error::InvalidIdentity(
            "the claims `sub` (a string) and `exp` are required",
        ));
    };
    let now_ms = i128::from(now.unix_millis());
    let leeway_ms = i128::from(IDENTITY_LEEWAY_SECS) * 1000;
    if i128::from(exp) * 1000 + leeway_ms < now_ms {
        return Err(Error::InvalidIdentity("it has expired"));
    }
    if raw
        .nbf
        .is_some_and(|nbf| i128::from(nbf) * 1000 > now_ms + leeway_ms)
    {
        return Err(Error::InvalidIdentity("it is not valid yet (`nbf`)"));
    }
    Ok(IdentityClaims {
        sub,
        exp,
        officer_id: raw.officer_id,
        name: raw.name,
    })
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
        let memory = &mut HashMemory::default();
        let h = hash_password("correct horse", memory).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(Some(&h), "correct horse", memory));
        assert!(!verify_password(Some(&h), "wrong", memory));
        assert!(!verify_password(None, "correct horse", memory));
        assert!(!verify_password(
            Some("$argon2id$garbage"),
            "correct horse",
            memory
        ));
    }

    #[test]
    fn hashes_verify_both_ways_with_the_argon2_crates_own_functions() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let memory = &mut HashMemory::default();
        // Ours, checked by the crate's verifier: the PHC string is standard.
        let ours = hash_password("correct horse", memory).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", ours.as_str())
                .is_ok()
        );
        // The crate's (as hashes stored before this change were made), checked by ours,
        // also with other parameters than the default.
        let theirs = Argon2::default()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert!(verify_password(Some(&theirs), "correct horse", memory));
        let params = Params::new(8192, 3, 1, Some(24)).unwrap();
        let other = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert!(verify_password(Some(&other), "correct horse", memory));
        assert!(!verify_password(Some(&other), "correct horsE", memory));
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

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_800_000_000_000;

    fn claims(exp: u64) -> IdentityClaims {
        IdentityClaims {
            sub: "cust-1".into(),
            exp,
            officer_id: Some("amy".into()),
            name: Some("Ada".into()),
        }
    }

    fn reason(token: &str) -> String {
        match verify_identity_token(SECRET, token, Timestamp::from_unix_millis(NOW)) {
            Err(Error::InvalidIdentity(why)) => why.to_string(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn identity_tokens_verify_with_the_secret_until_they_expire() {
        let now = Timestamp::from_unix_millis(NOW);
        let exp = (NOW / 1000) as u64 + 60;
        let token = customer_identity_token(SECRET, &claims(exp));
        assert_eq!(
            verify_identity_token(SECRET, &token, now).unwrap(),
            claims(exp)
        );
        // Past `exp`, within the leeway, and past the leeway.
        let late = customer_identity_token(SECRET, &claims((NOW / 1000) as u64 - 29));
        assert!(verify_identity_token(SECRET, &late, now).is_ok());
        let expired = customer_identity_token(SECRET, &claims((NOW / 1000) as u64 - 31));
        assert_eq!(reason(&expired), "it has expired");
        let other_key = customer_identity_token(b"another secret", &claims(exp));
        assert!(reason(&other_key).contains("signature"));
    }

    #[test]
    fn identity_tokens_refuse_other_algorithms_and_missing_claims() {
        let exp = (NOW / 1000) as u64 + 60;
        // `{"alg":"none","typ":"JWT"}`, with the payload of a real token and no signature.
        let signed = customer_identity_token(SECRET, &claims(exp));
        let payload = signed.split('.').nth(1).unwrap();
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(reason(&unsigned).contains("HS256"), "{}", reason(&unsigned));
        let hs512 = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
            &claims(exp),
            &jsonwebtoken::EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(reason(&hs512), "only HS256 is accepted");
        let sign = |v: serde_json::Value| {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                &v,
                &jsonwebtoken::EncodingKey::from_secret(SECRET),
            )
            .unwrap()
        };
        // (A `note` claim, ignored, keeps each token longer than a customer id.)
        let note = "a claim the server ignores";
        for bad in [
            serde_json::json!({ "sub": "cust-1", "note": note }),
            serde_json::json!({ "exp": exp, "note": note }),
        ] {
            assert!(reason(&sign(bad.clone())).contains("required"), "{bad}");
        }
        for bad in [
            serde_json::json!({ "sub": 7, "exp": exp, "note": note }),
            serde_json::json!({ "sub": "cust-1", "exp": "tomorrow", "note": note }),
            serde_json::json!({ "sub": "cust-1", "exp": exp, "officerId": 1, "note": note }),
        ] {
            assert!(
                reason(&sign(bad.clone())).contains("expected types"),
                "{bad}"
            );
        }
        assert!(reason(&"not a jwt ".repeat(8)).contains("well-formed"));
        assert!(reason("not a jwt").contains("too short"));
    }

    #[test]
    fn a_signed_customer_id_is_never_taken_for_an_identity_token() {
        use base64::Engine as _;
        // A valid customer id that reads as a JWT's `header.payload`:
        // {"alg":"HS256"} . {"sub":"x","exp":9999999999}
        let id = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ";
        assert!(crate::CustomerId::parse(id).is_ok());
        // Its signature, which the host application gives out in a link, is the JWT's.
        let mac = hex::decode(customer_signature(SECRET, id)).unwrap();
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac);
        let forged = format!("{id}.{signature}");
        assert!(
            reason(&forged).contains("signed customer id"),
            "{}",
            reason(&forged)
        );
        // Tokens as libraries make them (with "typ":"JWT") are long enough.
        let exp = (NOW / 1000) as u64 + 60;
        let minimal = IdentityClaims {
            sub: "c".into(),
            exp,
            officer_id: None,
            name: None,
        };
        let token = customer_identity_token(SECRET, &minimal);
        assert!(token.rsplit_once('.').unwrap().0.len() > MAX_NAME_ID_LEN);
        assert!(verify_identity_token(SECRET, &token, Timestamp::from_unix_millis(NOW)).is_ok());
    }

    #[test]
    fn secrets_compare() {
        assert!(secrets_equal(b"abc", b"abc"));
        assert!(!secrets_equal(b"abc", b"abd"));
        assert!(!secrets_equal(b"abc", b"abcd"));
    }
}
