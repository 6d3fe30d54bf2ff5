//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>) and the retry schedule:
//! pure functions, no I/O.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Prefix of a signing secret, as Standard Webhooks writes them.
pub const SECRET_PREFIX: &str = "whsec_";
/// How far a receiver accepts a `webhook-timestamp` from its own clock (replay protection).
pub const TOLERANCE_SECS: i64 = 300;

/// A new signing secret: `whsec_` and 24 random bytes in base64.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", B64.encode(bytes))
}

fn key_bytes(secret: &str) -> Option<Vec<u8>> {
    B64.decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret)).ok()
}

/// The `webhook-signature` header value for a message: `v1,<base64 HMAC-SHA-256 of
/// "id.timestamp.body">`. `None` when the secret is not base64 (never one of ours).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key_bytes(secret)?).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// Why a receiver refuses a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the timestamp is more than {TOLERANCE_SECS} s away from now")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// The receiver's check: the timestamp is within [`TOLERANCE_SECS`] of `now_secs` and one of
/// the space-separated signatures in `header` is ours (compared in constant time).
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now_secs: i64,
) -> Result<(), VerifyError> {
    if (now_secs - timestamp).abs() > TOLERANCE_SECS {
        return Err(VerifyError::Stale);
    }
    let key = key_bytes(secret).ok_or(VerifyError::Mismatch)?;
    for candidate in header.split(' ') {
        let Some(encoded) = candidate.strip_prefix("v1,") else { continue };
        let Ok(given) = B64.decode(encoded) else { continue };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| VerifyError::Mismatch)?;
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        if mac.verify_slice(&given).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::Mismatch)
}

/// The wait before attempt `attempt + 1` after `attempt` failed ones (1-based): `base × 4^(n-1)`,
/// at most `cap`. With a 5 s base and a 6 h cap: 5 s, 20 s, 80 s, 5 min, 21 min, 85 min, 5.7 h,
/// then 6 h, so ten attempts span about a day.
pub fn backoff_micros(attempt: i64, base_micros: i64, cap_micros: i64) -> i64 {
    let exponent = (attempt.max(1) - 1).min(30) as u32;
    base_micros.saturating_mul(4i64.saturating_pow(exponent)).min(cap_micros).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The example of the Standard Webhooks specification, so any of its libraries verifies ours.
    #[test]
    fn matches_the_standard_webhooks_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(secret, id, 1614265330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(verify(secret, id, 1614265330, body, &signature, 1614265330 + 10), Ok(()));
        assert_eq!(verify(secret, id, 1614265330, body, &signature, 1614265330 + 301), Err(VerifyError::Stale));
        assert_eq!(verify(secret, id, 1614265330, b"{}", &signature, 1614265330), Err(VerifyError::Mismatch));
    }

    #[test]
    fn the_schedule_grows_by_four_and_stops_at_the_cap() {
        let s = 1_000_000;
        let waits: Vec<i64> = (1..=9).map(|n| backoff_micros(n, 5 * s, 6 * 3600 * s) / s).collect();
        assert_eq!(waits, vec![5, 20, 80, 320, 1280, 5120, 20480, 21600, 21600]);
    }

    proptest! {
        #[test]
        fn a_signature_verifies_only_its_own_message(body in proptest::collection::vec(any::<u8>(), 0..200),
                                                     other in proptest::collection::vec(any::<u8>(), 0..200),
                                                     t in 0i64..4_000_000_000) {
            let secret = new_secret();
            let signature = sign(&secret, "msg_1", t, &body).unwrap();
            prop_assert_eq!(verify(&secret, "msg_1", t, &body, &signature, t), Ok(()));
            prop_assert!(verify(&new_secret(), "msg_1", t, &body, &signature, t).is_err());
            prop_assert!(verify(&secret, "msg_2", t, &body, &signature, t).is_err());
            if other != body {
                prop_assert!(verify(&secret, "msg_1", t, &other, &signature, t).is_err());
            }
        }

        #[test]
        fn backoff_never_decreases_and_never_passes_the_cap(n in 1i64..100, base in 1i64..10_000_000, cap in 1i64..100_000_000_000) {
            let a = backoff_micros(n, base, cap);
            prop_assert!(a <= cap.max(0));
            prop_assert!(backoff_micros(n + 1, base, cap) >= a);
        }
    }
}
