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
pub(crate) struct Credentials {
    pub(crate) client_id: String,
    pub(crate) name: String,
    pub(crate) kid: String,
    /// PKCS#8 DER of the Ed25519 private key, base64url.
    pub(crate) private_key_pkcs8: String,
    pub(crate) token_endpoint: String,
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
            let (verifier, challenge) = pkce_pair();
            println!("{}", serde_json::json!({"code_verifier": verifier, "code_challenge": challenge}));
            Ok(())
        }
    }
}

pub(crate) fn sign(credentials: &Credentials, audience: &str) -> Result<String> {
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
    let mut registered = Vec::new();
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
            daily_quota: None,
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
        registered.push((partner, credentials));
    }
    seed_sample_consents(service, &registered).await
}

/// Captures codes in memory: the demo's customers authorise its sample consents in-process.
#[derive(Default)]
struct CapturedCodes(std::sync::Mutex<Vec<String>>);

#[async_trait::async_trait]
impl openbank_platform::notify::CodeNotifier for CapturedCodes {
    async fn deliver(&self, message: &openbank_platform::notify::CodeMessage) -> Result<(), String> {
        self.0.lock().map_err(|e| e.to_string())?.push(message.code.clone());
        Ok(())
    }
}

/// Walks the consent screen's steps in-process for a demo customer, as they would on the
/// bank's page (the pushed request signed with the partner's key, the one-time code, the
/// accounts, the decision). Returns the redirect with the authorization code, and the PKCE
/// verifier to exchange it with.
pub(crate) async fn authorise_in_process(
    service: &openbank_platform::OpenBanking,
    credentials: &Credentials,
    consent_id: &str,
    scope: &str,
    customer_id: &str,
    accounts: &[String],
) -> Result<(String, String)> {
    let codes = std::sync::Arc::new(CapturedCodes::default());
    let service = service.clone().with_notifier(codes.clone());
    let (verifier, challenge) = pkce_pair();
    let assertion = sign(credentials, &service.token_endpoint())?;
    let params = openbank::consent::AuthorizationParams {
        response_type: Some("code"),
        redirect_uri: Some("http://localhost:8080/callback"),
        scope: Some(scope),
        state: Some("demo"),
        code_challenge: Some(&challenge),
        code_challenge_method: Some("S256"),
        consent_id: Some(consent_id),
    };
    let pushed = service.push_authorization(Some(&credentials.client_id), &assertion, &params).await?;
    let authorization = pushed.request_uri.rsplit(':').next().unwrap_or_default().to_string();
    // The phone only addresses the message, which stays in memory here.
    service.start_authentication(&authorization, Some((customer_id.to_string(), "demo".into()))).await?;
    let code = codes.0.lock().map_err(|e| anyhow::anyhow!("{e}"))?.pop().context("a one-time code")?;
    let (session, _) = service.verify_authentication(&authorization, &code).await?;
    let redirect =
        service.decide(&authorization, &session, openbank_platform::ConsentDecision::Authorise, accounts).await?;
    Ok((redirect, verifier))
}

fn pkce_pair() -> (String, String) {
    let bytes: [u8; 32] = rand::Rng::gen(&mut rand::rngs::OsRng);
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = openbank::consent::pkce_challenge(&verifier);
    (verifier, challenge)
}

/// Sample consents of the demo bank, so the customer dashboard, the staff views and the
/// partner's calls have something to show: for the shop, one authorised account-access consent,
/// one awaiting its customer and one the customer revoked; for the lender, a loan application
/// consent awaiting its customer.
async fn seed_sample_consents(
    service: &openbank_platform::OpenBanking,
    registered: &[(openbank_platform::Partner, Credentials)],
) -> Result<()> {
    let [(shop, shop_credentials), (lender, _)] = registered else { return Ok(()) };
    // Three customers of the demo bank with an open CNY deposit account.
    let mut customers: Vec<(String, String)> = Vec::new();
    let mut after = None;
    'pages: loop {
        let page = service.ledger().list_accounts(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for account in &page {
            let customer =
                account.owner_id.clone().filter(|_| account.code.as_deref().is_some_and(|c| c.starts_with("deposit.")));
            if let Some(owner) = customer.filter(|o| !customers.iter().any(|(c, _)| c == o)) {
                if account.status == ledger::AccountStatus::Open {
                    customers.push((owner, account.id.0.to_string()));
                    if customers.len() == 3 {
                        break 'pages;
                    }
                }
            }
        }
    }
    if customers.len() < 3 {
        return Ok(());
    }
    let now = chrono::Utc::now().timestamp_micros();
    let spec = |days: i64| openbank::consent::ConsentSpec {
        permissions: vec![
            openbank::consent::Permission::ReadAccountsDetail,
            openbank::consent::Permission::ReadBalances,
            openbank::consent::Permission::ReadTransactionsDetail,
        ],
        expires_at: now + days * 86_400_000_000,
        transaction_from: None,
        transaction_to: None,
        frequency_per_day: openbank::consent::DEFAULT_FREQUENCY_PER_DAY,
    };
    let authorised = service.create_consent(shop, spec(90)).await?;
    authorise_in_process(
        service,
        shop_credentials,
        &authorised.consent_id,
        "accounts",
        &customers[0].0,
        std::slice::from_ref(&customers[0].1),
    )
    .await?;
    let revoked = service.create_consent(shop, spec(30)).await?;
    authorise_in_process(
        service,
        shop_credentials,
        &revoked.consent_id,
        "accounts",
        &customers[1].0,
        std::slice::from_ref(&customers[1].1),
    )
    .await?;
    let revoked = service.consent(&revoked.consent_id).await?;
    service.revoke_consent(&revoked, openbank::consent::RevokedBy::Customer).await?;
    let waiting = service.create_consent(shop, spec(7)).await?;
    let loan = openbank::consent::LoanTerms {
        product_code: "instant_consumer".into(),
        max_amount_minor: 5_000_000,
        currency: "CNY".into(),
    };
    let loan_consent = service.create_loan_consent(lender, loan, now + 7 * 86_400_000_000).await?;
    println!(
        "sample consents: {} authorised by {}, {} revoked by {}, {} and loan consent {} awaiting their customer",
        authorised.consent_id,
        customers[0].0,
        revoked.consent_id,
        customers[1].0,
        waiting.consent_id,
        loan_consent.consent_id
    );
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
