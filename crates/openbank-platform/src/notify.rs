//! Delivering one-time codes to customers. The bank plugs its SMS gateway in by implementing
//! [`CodeNotifier`]; the platform ships [`FileOutbox`], the sandbox's "phone": codes are
//! appended to a file under the data directory (mode 0600) that a developer or a test reads.
//! Codes never reach the log.

use std::io::Write;
use std::path::PathBuf;

/// A code to deliver.
#[derive(Debug, Clone)]
pub struct CodeMessage {
    pub customer_id: String,
    /// The phone number on the customer's record, in clear (for the gateway only).
    pub phone: String,
    /// `authorise` (a consent) or `sign_in` (the consent dashboard).
    pub purpose: String,
    /// The partner asking, when authorising a consent (shown in the message).
    pub partner_name: Option<String>,
    pub code: String,
    pub expires_in_secs: i64,
}

#[async_trait::async_trait]
pub trait CodeNotifier: Send + Sync + 'static {
    /// Delivers the code, or says why it could not.
    async fn deliver(&self, message: &CodeMessage) -> Result<(), String>;
}

/// Appends each code as one JSON line to a file: the sandbox's outbox.
pub struct FileOutbox {
    path: PathBuf,
}

impl FileOutbox {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileOutbox { path: path.into() }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

#[async_trait::async_trait]
impl CodeNotifier for FileOutbox {
    async fn deliver(&self, message: &CodeMessage) -> Result<(), String> {
        let line = serde_json::json!({
            "at": chrono::Utc::now().to_rfc3339(),
            "customer_id": message.customer_id,
            // The outbox stands for the customer's phone; it shows which one, masked.
            "to": customer::mask_phone(&message.phone),
            "purpose": message.purpose,
            "partner": message.partner_name,
            "code": message.code,
            "expires_in": message.expires_in_secs,
        })
        .to_string();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&path)?;
            writeln!(file, "{line}")
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("could not write the code outbox: {e}"))
    }
}

/// A notifier for servers without a gateway: every delivery fails with a clear reason.
pub struct NoNotifier;

#[async_trait::async_trait]
impl CodeNotifier for NoNotifier {
    async fn deliver(&self, _: &CodeMessage) -> Result<(), String> {
        Err("no one-time code notifier is configured on this server".into())
    }
}
