//! Open banking from the command line: the demo bank's sandbox partners, and a client assertion
//! signer so a person can walk the token flow with curl.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use clap::{Args, Subcommand};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use openbank::{Environment, NewPartner, PartnerRole};
use serde::{Deserialize, Serialize};

#[derive(Subcommand)]
pub enum OpenBankingCommand {
    /// Print a client assertion (private_key_jwt, valid 60 s, used once) signed with a sandbox
    /// partner's key, for `client_assertion=` at the token endpoint.
    Assertion(AssertionArgs),
    /// Print a fresh PKCE pair (RFC 7636, S256) as JSON: `code_challenge` goes in the pushed
    /// authorization request, `code_verifier` with the code to the token endpoint.
    Pkce,
}

#[derive(Args)]
pub struct AssertionArgs {
    /// A partner credentials file (`serve --demo` writes them under `<data dir>/sandbox-partners/`).
    #[arg(long)]
    credentials: PathBuf,
    /// The audience; defaults to the token endpoint named in the credentials file.
    #[arg(long)]
    audience: Option<String>,
}

/// What a sandbox partner needs to authenticate: its client id, key id and private key.
#[derive(Serialize, Deserialize)]
struct Credentials {
    client_id: String,
    name: String,
    kid: String,
    /// PKCS#8 DER of the Ed25519 private key, base64url.
    private_key_pkcs8: String,
    token_endpoint: String,
}

pub fn run(command: OpenBankingCommand) -> Result<()> {
    match command {
        OpenBankingCommand::Assertion(args) => {
            let text = std::fs::read_to_string(&args.credentials)
                .with_context(|| format!("reading {}", args.credentials.display()))?;
            let credentials: Credentials = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a partner credentials file", args.credentials.display()))?;
            let audience = args.audience.unwrap_or_else(|| credentials.token_endpoint.clone());
            println!("{}", sign(&credentials, &audience)?);
            Ok(())
        }
        OpenBankingCommand::Pkce => {
            let bytes: [u8; 32] = rand::Rng::gen(&mut rand::rngs::OsRng);
            let verifier = URL_SAFE_NO_PAD.encode(bytes);
            let challenge = openbank::consent::pkce_challenge(&verifier);
            println!("{}", serde_json::json!({"code_verifier": verifier, "code_challenge": challenge}));
            Ok(())
        }
    }
}

fn sign(credentials: &Credentials, audience: &str) -> Result<String> {
    let der = URL_SAFE_NO_PAD.decode(&credentials.private_key_pkcs8).context("private_key_pkcs8 is not base64url")?;
    // Checks the key is an Ed25519 PKCS#8 document before signing with it.
    ed25519_dalek::SigningKey::from_pkcs8_der(&der).map_err(|e| anyhow::anyhow!("not an Ed25519 key: {e}"))?;
    let now = chrono::Utc::now().timestamp();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(credentials.kid.clone());
    let claims = serde_json::json!({
        "iss": credentials.client_id, "sub": credentials.client_id, "aud": audience,
        "iat": now, "exp": now + 60, "jti": uuid::Uuid::now_v7().to_string(),
    });
    Ok(jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ed_der(&der))?)
}

/// Registers the demo bank's two sandbox partners when there are no partners yet, writing each
/// one's credentials (private key included, mode 0600) under `<dir>/sandbox-partners/`.
pub async fn ensure_sandbox_partners(service: &openbank_platform::OpenBanking, dir: &Path) -> Result<()> {
    if !service.partners(None, 1).await?.is_empty() {
        return Ok(());
    }
    let folder = dir.join("sandbox-partners");
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    let partners = [
        ("shop", "淘货商城 Demo Shop (sandbox)", vec![PartnerRole::AccountInformation, PartnerRole::PaymentInitiation]),
        ("lender", "链融伙伴 Supply Chain Platform (sandbox)", vec![PartnerRole::Lending]),
    ];
    for (slug, name, roles) in partners {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let kid = format!("{slug}-1");
        let public = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes())});
        let spec = openbank::check_partner(NewPartner {
            name: name.to_string(),
            roles,
            redirect_uris: vec!["http://localhost:8080/callback".into()],
            jwks: serde_json::json!({ "keys": [public] }),
            environment: Environment::Sandbox,
        })?;
        let partner = service.register(spec).await?;
        let credentials = Credentials {
            client_id: partner.id.clone(),
            name: partner.name.clone(),
            kid,
            private_key_pkcs8: URL_SAFE_NO_PAD.encode(key.to_pkcs8_der()?.as_bytes()),
            token_endpoint: service.token_endpoint(),
        };
        let path = folder.join(format!("{slug}.json"));
        write_private(&path, &serde_json::to_string_pretty(&credentials)?)?;
        println!("sandbox partner {:?}: client_id {} (credentials: {})", partner.name, partner.id, path.display());
    }
    Ok(())
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}
