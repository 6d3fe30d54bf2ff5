//! `[risk]` settings.

use risk::Channel;
use serde::{Deserialize, Serialize};

/// `[risk]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    /// Transfers posted to `POST /v1/transfers` whose `metadata.channel` is one of these are
    /// screened by the engine before they reach the ledger.
    pub screen_channels: Vec<Channel>,
    /// A transfer the engine sends to review is held (two-phase pending transfer) for at most
    /// this long; 0 = until an analyst resolves the case.
    pub review_hold_secs: u32,
    /// Model artefact name loaded at start-up (the latest version stored under that name).
    pub model: String,
    /// `durable` (default): answer after the decision is committed; `buffered`: answer at once.
    pub decision_log: DecisionLog,
    /// At start-up, decisions of the last this many days are replayed from the decision log into
    /// the relationship graph (and the last 30 days into the velocity counters), so a restart
    /// does not forget who shares a device with whom.
    pub graph_history_days: u32,
    /// How often (seconds) a running server looks for a newer model, another active rule set
    /// and changed list entries stored by another process or node; 0 = never.
    pub refresh_secs: u32,
    /// Most decisions being decided or waiting for the decision log at once; beyond this a
    /// decision is refused at once (HTTP 503 `overloaded`, `Retry-After`) so that the accepted
    /// ones keep their latency instead of everyone queueing.
    pub max_in_flight: u32,
}

/// When `POST /v1/risk/decisions` answers relative to the decision log write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionLog {
    #[default]
    Durable,
    Buffered,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            screen_channels: vec![Channel::Mobile, Channel::Web, Channel::OpenBanking],
            review_hold_secs: 86_400,
            model: risk::FRAUD_GBDT_MODEL.to_string(),
            decision_log: DecisionLog::Durable,
            graph_history_days: 90,
            refresh_secs: 10,
            max_in_flight: 1024,
        }
    }
}

impl RiskConfig {
    /// Parses a comma-separated channel list (`DIGIBANK_RISK_SCREEN_CHANNELS`).
    pub fn parse_channels(text: &str) -> Result<Vec<Channel>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
                    format!("unknown channel {s:?}: use web, mobile, branch, atm, pos, open_banking or call_center")
                })
            })
            .collect()
    }
}
