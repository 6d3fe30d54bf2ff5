//! A partner's side of open banking for the tests: its key pair and its client assertions.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use serde_json::{json, Value};

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A partner's key pair: the private half stays here, the public half is registered.
pub struct PartnerKey {
    pub kid: String,
    pub signing: jsonwebtoken::EncodingKey,
    pub public_jwk: Value,
}

pub fn partner_key(kid: &str) -> PartnerKey {
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let der = key.to_pkcs8_der().unwrap();
    PartnerKey {
        kid: kid.to_string(),
        signing: jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        public_jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes())}),
    }
}

/// A client assertion: `iss` = `sub` = client id, for `aud`, living `life` seconds.
pub fn assertion(key: &PartnerKey, client_id: &str, aud: &str, life: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    let claims = json!({"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + life,
        "jti": uuid::Uuid::now_v7().to_string()});
    jsonwebtoken::encode(&header, &claims, &key.signing).unwrap()
}
