//! `digibank process`: export the process event log (OCEL 2.0, XES), import logs of other
//! systems (CSV with a column mapping, XES), and mine a log (the analysis the API answers).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use process::csv_import::CsvMapping;
use process::{Filter, Process};
use process_platform::{LogSource, ProcessService};

#[derive(Subcommand)]
pub enum ProcessCommand {
    /// Export a log as OCEL 2.0 JSON or XES (to standard output or --output).
    Export {
        /// `ocel` or `xes`.
        #[arg(long, default_value = "ocel")]
        format: String,
        #[command(flatten)]
        log: LogArgs,
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Import a log of another system: XES, or CSV with `--map case=COL,activity=COL,timestamp=COL`
    /// (optional start_timestamp, resource, product, channel, outcome, amount_minor, cost_minor).
    Import {
        /// `csv` or `xes`.
        #[arg(long)]
        format: String,
        #[arg(long)]
        name: String,
        /// CSV column mapping: `field=column` pairs separated by commas.
        #[arg(long)]
        map: Option<String>,
        file: PathBuf,
    },
    /// Mine a log: variants, bottlenecks, rework, SLA and value stream (JSON).
    Mine {
        #[command(flatten)]
        log: LogArgs,
        /// Entries per list.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
}

#[derive(Args)]
pub struct LogArgs {
    /// One of the bank's processes (`loan_origination`, `customer_onboarding`, `risk_case`,
    /// `transfer_hold`).
    #[arg(long, default_value = "loan_origination", conflicts_with = "log")]
    process: String,
    /// An imported log's id instead.
    #[arg(long)]
    log: Option<String>,
    /// Cases that started at or after this time (RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Cases that started before this time (RFC 3339).
    #[arg(long)]
    to: Option<String>,
}

impl LogArgs {
    fn parse(&self) -> Result<(LogSource, Filter)> {
        let source = match &self.log {
            Some(id) => LogSource::Imported(id.clone()),
            None => LogSource::Live(
                Process::parse(&self.process).with_context(|| format!("unknown process {:?}", self.process))?,
            ),
        };
        let time = |v: &Option<String>| -> Result<Option<i64>> {
            v.as_deref()
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(t)
                        .map(|t| t.timestamp_micros())
                        .with_context(|| format!("{t:?} is not an RFC 3339 date-time"))
                })
                .transpose()
        };
        Ok((source, Filter { from: time(&self.from)?, to: time(&self.to)?, ..Filter::default() }))
    }
}

fn mapping(text: &str) -> Result<CsvMapping> {
    let mut m = CsvMapping::default();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (field, column) = pair.split_once('=').with_context(|| format!("{pair:?} is not field=column"))?;
        let column = column.trim().to_string();
        match field.trim() {
            "case" => m.case = column,
            "activity" => m.activity = column,
            "timestamp" => m.timestamp = column,
            "start_timestamp" => m.start_timestamp = Some(column),
            "resource" => m.resource = Some(column),
            "product" => m.product = Some(column),
            "channel" => m.channel = Some(column),
            "outcome" => m.outcome = Some(column),
            "amount_minor" => m.amount_minor = Some(column),
            "cost_minor" => m.cost_minor = Some(column),
            other => bail!("unknown mapping field {other:?}"),
        }
    }
    if m.case.is_empty() || m.activity.is_empty() || m.timestamp.is_empty() {
        bail!("the mapping needs case, activity and timestamp");
    }
    Ok(m)
}

pub async fn run(url: &str, command: ProcessCommand) -> Result<()> {
    let db = storage::Database::connect(url).await.with_context(|| format!("cannot open database {url}"))?;
    let service = ProcessService::new(db.clone(), Arc::new(clock::SystemClock));
    let result = match command {
        ProcessCommand::Export { format, log, output } => {
            let (source, filter) = log.parse()?;
            let text = match format.as_str() {
                "ocel" => serde_json::to_string_pretty(&service.export_ocel(&source, &filter).await?)?,
                "xes" => service.export_xes(&source, &filter).await?,
                other => bail!("format must be ocel or xes, not {other:?}"),
            };
            match output {
                Some(path) => std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?,
                None => println!("{text}"),
            }
            Ok(())
        }
        ProcessCommand::Import { format, name, map, file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let info = match format.as_str() {
                "xes" => service.import_xes(&name, &text).await?,
                "csv" => service.import_csv(&name, &text, &mapping(map.as_deref().unwrap_or(""))?).await?,
                other => bail!("format must be csv or xes, not {other:?}"),
            };
            println!("{}", serde_json::to_string_pretty(&info)?);
            Ok(())
        }
        ProcessCommand::Mine { log, limit } => {
            let (source, filter) = log.parse()?;
            let analysis = service.analyse(&source, &filter, None, limit.clamp(1, 200)).await?;
            println!("{}", serde_json::to_string_pretty(&analysis)?);
            Ok(())
        }
    };
    db.close().await;
    result
}
