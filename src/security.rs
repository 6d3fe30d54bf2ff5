//! Field encryption keys from the command line's point of view: where the master key comes
//! from, the start-up step that seals data written before encryption, and `digibank security`
//! (`rotate-key`, `status`).
//!
//! The master key, first match wins (flags beat env beat file):
//! 1. `--master-key-file PATH`;
//! 2. `DIGIBANK_MASTER_KEY` (64 hex digits or base64 of 32 bytes) or
//!    `DIGIBANK_MASTER_KEY_FILE` (setting both is refused);
//! 3. `master_key_file` in `[security]` of the config file (applied as
//!    `DIGIBANK_MASTER_KEY_FILE` when neither variable is set);
//! 4. `master.key` in the data directory (the SQLite file's directory, `./data` for
//!    PostgreSQL), if it exists.
//!
//! With none of them, a database that holds no data keys yet gets a new key file there (mode
//! 0600, location printed: this is what keeps `serve --demo` a one-command start); a database
//! that holds encrypted data refuses to open.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use access::vault::{self, MasterKey, Vault, DEFAULT_KEY_FILE};
use anyhow::{bail, Context, Result};
use storage::Database;

/// The variable holding the master key itself.
pub const ENV_KEY: &str = "DIGIBANK_MASTER_KEY";
/// The variable naming the key file.
pub const ENV_KEY_FILE: &str = "DIGIBANK_MASTER_KEY_FILE";

/// Rows re-encrypted per statement page during a rotation.
const ROTATE_PAGE: i64 = 500;

/// The tables every platform declares sealed columns in.
pub fn encrypted_tables() -> Vec<access::EncryptedTable> {
    let mut all = Vec::new();
    all.extend_from_slice(customer_platform::encryption::encrypted_tables());
    all.extend_from_slice(lending_platform::store::ENCRYPTED_TABLES);
    all.extend_from_slice(risk_platform::store::ENCRYPTED_TABLES);
    all.extend_from_slice(openbank_platform::ENCRYPTED_TABLES);
    all.extend_from_slice(webhooks::ENCRYPTED_TABLES);
    all
}

/// Where a database keeps its default key file.
pub fn data_dir(db: &Database) -> PathBuf {
    match db {
        Database::Sqlite(s) => Path::new(&s.path).parent().map(Path::to_path_buf).unwrap_or_default(),
        Database::Postgres(_) => PathBuf::from("data"),
    }
}

/// Opens the vault of `db` with the configured master key (see the module docs), then seals
/// whatever an older version left in clear.
pub async fn open_vault(db: &Database, key_file_flag: Option<&Path>) -> Result<Vault> {
    let env_key = std::env::var(ENV_KEY).ok().filter(|v| !v.trim().is_empty());
    let env_file = std::env::var(ENV_KEY_FILE).ok().filter(|v| !v.trim().is_empty());
    let default_file = data_dir(db).join(DEFAULT_KEY_FILE);
    let key = if let Some(path) = key_file_flag {
        MasterKey::from_file(path)?
    } else if env_key.is_some() && env_file.is_some() {
        bail!("both {ENV_KEY} and {ENV_KEY_FILE} are set: set only one");
    } else if let Some(text) = env_key {
        MasterKey::parse(&text, ENV_KEY)?
    } else if let Some(path) = env_file {
        MasterKey::from_file(Path::new(&path))?
    } else if default_file.exists() {
        MasterKey::from_file(&default_file)?
    } else if vault::has_data_keys(db).await? {
        bail!(
            "this database holds encrypted personal data but no master key is configured: set --master-key-file, \
             {ENV_KEY_FILE} or {ENV_KEY}, or master_key_file in [security] of the config file (the key that \
             encrypted it; {} does not exist)",
            default_file.display()
        );
    } else {
        let (key, created) = MasterKey::create_file(&default_file)?;
        if created {
            println!(
                "master key generated: {} (mode 0600). It encrypts every name, ID number and phone number: back it up \
                 apart from the database; without it that data cannot be read",
                default_file.display()
            );
        }
        key
    };
    let vault = Vault::load(db, Arc::new(key)).await.context("cannot open the field encryption keys")?;
    seal_existing(db, &vault).await?;
    Ok(vault)
}

/// The start-up step after the SQL migrations: seals rows an older version wrote in clear (and
/// turns the risk log's unkeyed digests into blind indexes). Idempotent; a no-op on an
/// encrypted database. On SQLite a database that had clear rows is vacuumed afterwards, so the
/// clear values do not linger in free pages or the WAL.
pub async fn seal_existing(db: &Database, vault: &Vault) -> Result<u64> {
    let customers = customer_platform::encryption::encrypt_existing(db, vault, |_| {}).await?;
    let lending = lending_platform::encryption::encrypt_existing(db, vault).await?;
    let risk = risk_platform::encryption::encrypt_existing(db, vault).await?;
    let total = customers + lending + risk;
    if total > 0 {
        println!(
            "field encryption: sealed {customers} customer rows, {lending} lending rows and {risk} risk rows written \
             before encryption"
        );
        db.compact().await?;
    }
    Ok(total)
}

/// Re-encrypts every sealed row to `version`, page by page, calling `progress(done, total)`;
/// returns when no row is left under an older key and the rotation is recorded as finished.
/// Rows a server writes meanwhile with a key it has not yet replaced are picked up by the next
/// pass (servers reload keys every few seconds).
pub async fn run_rotation(vault: &Vault, version: u32, mut progress: impl FnMut(u64, u64)) -> Result<()> {
    let tables = encrypted_tables();
    let mut done = 0u64;
    loop {
        let total = done + vault.rows_to_rotate(&tables, version).await? as u64;
        progress(done, total);
        for table in &tables {
            loop {
                let n = vault
                    .rotate_page(table, version, ROTATE_PAGE)
                    .await
                    .with_context(|| format!("re-encrypting {}", table.table))?;
                if n == 0 {
                    break;
                }
                done += n;
                progress(done, total.max(done));
            }
        }
        if vault.finish_rotation(&tables, version).await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Resumes an unfinished rotation in the background of a server (a `rotate-key` interrupted
/// by a restart).
pub async fn resume_rotation_in_background(vault: &Vault) -> Result<()> {
    let Some(version) = vault.pending_rotation().await? else { return Ok(()) };
    println!("field encryption: resuming the rotation to data key v{version} in the background");
    let vault = vault.clone();
    tokio::spawn(async move {
        match run_rotation(&vault, version, |_, _| {}).await {
            Ok(()) => tracing::info!(version, "data key rotation finished"),
            Err(e) => tracing::warn!(error = %e, "data key rotation stopped; digibank security rotate-key resumes it"),
        }
    });
    Ok(())
}
