use crate::event::EventKind;

/// Errors raised by the risk crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RiskError {
    #[error("malformed event: {0}")]
    MalformedEvent(String),
    #[error("{kind} event is missing required field `{field}`")]
    MissingField { kind: EventKind, field: &'static str },
    #[error("invalid field `{field}`: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("rule set {name} version {version} already exists or is not newer than {latest}")]
    VersionNotNewer { name: String, version: u32, latest: u32 },
    #[error("rule set version {0} not found")]
    UnknownVersion(u32),
    #[error("invalid rule {rule}: {reason}")]
    InvalidRule { rule: String, reason: String },
    /// A rule expression that does not parse or type-check; `error` carries line and column.
    #[error("invalid rule {rule}: {error}")]
    InvalidExpression { rule: String, error: rules::CompileError },
    #[error("condition kind not supported by this compiler: {0}")]
    UnsupportedCondition(String),
    #[error("case {0} not found")]
    CaseNotFound(u64),
    #[error("case {0} is already resolved")]
    CaseAlreadyResolved(u64),
    #[error("market data: {0}")]
    MarketData(String),
    #[error(transparent)]
    Money(#[from] money::MoneyError),
    #[error(transparent)]
    Model(#[from] ml::MlError),
}
