//! External data adapters: credit bureau, social security, housing fund, tax bureau and the core
//! enterprise's ERP. One trait per source, a JSON-file implementation ([`FileSource`]) and a
//! deterministic simulator ([`Simulator`]: same seed and applicant id → same data), bundled in
//! [`DataSources`] which collects an [`AdapterSnapshot`] for a decision.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate};
use customer::{CustomerKind, KycStatus};
use money::Currency;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::product::{Product, ProductKind};
use crate::{LendingError, RiskGrade};

/// The applicant as known to the bank (from the customer domain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Applicant {
    /// Customer id or ID number; the key under which external data is looked up.
    pub id: String,
    /// `individual`, `sole_proprietor`, `sme` or `core_enterprise`.
    #[schema(value_type = String, example = "individual")]
    pub kind: CustomerKind,
    pub name: String,
    /// Individuals (and sole proprietors): used for the age rules.
    pub birth_date: Option<NaiveDate>,
    /// KYC status: `not_started`, `pending`, `verified`, `rejected` or `expired`.
    #[schema(value_type = String, example = "verified")]
    pub kyc: KycStatus,
    /// Supply chain: the receivable the applicant wants to finance.
    pub receivable_id: Option<String>,
}

/// Credit bureau report (personal or enterprise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BureauReport {
    /// Bureau score (300–900) when the bureau has one.
    pub score: Option<u16>,
    /// Number of delinquencies (any days past due) in the last 12 months.
    pub delinquencies_12m: u32,
    pub max_dpd_12m: u32,
    /// Days past due today on the worst current obligation (0 = none).
    pub current_dpd: u32,
    pub open_loans: u32,
    pub outstanding_debt_minor: i64,
    pub monthly_debt_service_minor: i64,
    pub inquiries_3m: u32,
    pub history_months: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SocialSecurityRecord {
    pub active: bool,
    pub months_contributed: u32,
    pub continuous_months: u32,
    /// Contribution base: a verified proxy for the monthly salary.
    pub monthly_base_minor: i64,
    pub employer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HousingFundRecord {
    pub active: bool,
    pub months_contributed: u32,
    /// Employee + employer deposit per month.
    pub monthly_deposit_minor: i64,
    pub balance_minor: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaxYear {
    pub year: i32,
    pub tax_paid_minor: i64,
    pub revenue_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaxRecord {
    /// Tax credit rating: A, B, M, C or D.
    pub credit_rating: String,
    pub registered_months: u32,
    /// Newest first.
    pub years: Vec<TaxYear>,
    /// Monthly inflows (invoiced sales) for the last 12 months, oldest first.
    pub monthly_inflows_minor: Vec<i64>,
}

impl TaxRecord {
    pub fn last_year(&self) -> Option<&TaxYear> {
        self.years.first()
    }
}

/// A payable of a core enterprise to a supplier, as recorded in the core enterprise's ERP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErpReceivable {
    pub id: String,
    pub core_enterprise_id: String,
    pub core_enterprise_name: String,
    /// The bank's grade of the core enterprise.
    pub core_grade: RiskGrade,
    pub supplier_id: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    /// Confirmed (确权) by the core enterprise.
    pub confirmed: bool,
    /// How long the supplier has been delivering to the core enterprise.
    pub relationship_months: u32,
    /// SHA-256 (hex) of the order, invoice and delivery receipt.
    pub document_hashes: Vec<String>,
}

pub trait BureauSource: Send + Sync {
    fn bureau_report(&self, applicant_id: &str) -> Result<Option<BureauReport>, LendingError>;
}
pub trait SocialSecuritySource: Send + Sync {
    fn social_security(&self, applicant_id: &str) -> Result<Option<SocialSecurityRecord>, LendingError>;
}
pub trait HousingFundSource: Send + Sync {
    fn housing_fund(&self, applicant_id: &str) -> Result<Option<HousingFundRecord>, LendingError>;
}
pub trait TaxSource: Send + Sync {
    fn tax_record(&self, applicant_id: &str) -> Result<Option<TaxRecord>, LendingError>;
}
pub trait ErpSource: Send + Sync {
    fn receivable(&self, receivable_id: &str) -> Result<Option<ErpReceivable>, LendingError>;
}

/// Everything the decision saw, stored with the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdapterSnapshot {
    pub applicant: Applicant,
    pub as_of: NaiveDate,
    pub bureau: Option<BureauReport>,
    pub social_security: Option<SocialSecurityRecord>,
    pub housing_fund: Option<HousingFundRecord>,
    pub tax: Option<TaxRecord>,
    pub receivable: Option<ErpReceivable>,
}

/// The five sources behind one handle.
#[derive(Clone)]
pub struct DataSources {
    pub bureau: Arc<dyn BureauSource>,
    pub social_security: Arc<dyn SocialSecuritySource>,
    pub housing_fund: Arc<dyn HousingFundSource>,
    pub tax: Arc<dyn TaxSource>,
    pub erp: Arc<dyn ErpSource>,
}

impl DataSources {
    /// All five sources from one implementation.
    pub fn all<S>(source: S) -> DataSources
    where
        S: BureauSource + SocialSecuritySource + HousingFundSource + TaxSource + ErpSource + 'static,
    {
        let s = Arc::new(source);
        DataSources { bureau: s.clone(), social_security: s.clone(), housing_fund: s.clone(), tax: s.clone(), erp: s }
    }

    pub fn simulated(seed: u64) -> DataSources {
        DataSources::all(Simulator::new(seed))
    }

    pub fn from_dir(dir: impl Into<PathBuf>) -> DataSources {
        DataSources::all(FileSource::new(dir))
    }

    /// Fetches what the product needs: individuals get bureau, social security and housing fund;
    /// tax_sme gets bureau and tax; supply_chain gets the receivable, bureau and tax.
    pub fn collect(
        &self,
        applicant: &Applicant,
        product: &Product,
        as_of: NaiveDate,
    ) -> Result<AdapterSnapshot, LendingError> {
        let id = applicant.id.as_str();
        let mut snap = AdapterSnapshot {
            applicant: applicant.clone(),
            as_of,
            bureau: self.bureau.bureau_report(id)?,
            social_security: None,
            housing_fund: None,
            tax: None,
            receivable: None,
        };
        match product.kind {
            ProductKind::InstantConsumer => {
                snap.social_security = self.social_security.social_security(id)?;
                snap.housing_fund = self.housing_fund.housing_fund(id)?;
            }
            ProductKind::TaxSme => snap.tax = self.tax.tax_record(id)?,
            ProductKind::SupplyChain => {
                snap.tax = self.tax.tax_record(id)?;
                if let Some(rid) = &applicant.receivable_id {
                    snap.receivable = self.erp.receivable(rid)?;
                }
            }
        }
        Ok(snap)
    }
}

/// The largest data-source record file read (1 MiB; a real record is a few kilobytes).
pub const MAX_RECORD_BYTES: u64 = 1 << 20;

fn check_key(key: &str) -> Result<(), LendingError> {
    if key.is_empty()
        || key.len() > 128
        || !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        || key.starts_with('.')
    {
        return Err(LendingError::InvalidKey(key.to_string()));
    }
    Ok(())
}

/// JSON files in a directory: `<dir>/<source>/<key>.json` with `<source>` one of `applicant`,
/// `bureau`, `social_security`, `housing_fund`, `tax`, `erp` and `<key>` the applicant id (or
/// receivable id for `erp`). Each file holds one record as serialised by this crate
/// ([`Applicant`], [`BureauReport`], [`SocialSecurityRecord`], [`HousingFundRecord`],
/// [`TaxRecord`], [`ErpReceivable`]). A missing source file means "the source has no record"
/// (`Ok(None)`; the decision rules then decide, e.g. `no_bureau_report`); a malformed file is
/// an error. The `applicant` file is the bank's own record of the applicant (kind, birth date,
/// KYC, receivable to finance): [`FileSource::applicant_record`] reports a missing one as a
/// [`LendingError::DataSource`] error, since there is nothing to decide on. Keys are restricted to `[A-Za-z0-9_.:-]`, not starting with `.`, so a key cannot
/// escape the directory.
#[derive(Debug, Clone)]
pub struct FileSource {
    dir: PathBuf,
}

impl FileSource {
    pub fn new(dir: impl Into<PathBuf>) -> FileSource {
        FileSource { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read<T: DeserializeOwned>(&self, source: &'static str, key: &str) -> Result<Option<T>, LendingError> {
        check_key(key)?;
        let path = self.dir.join(source).join(format!("{key}.json"));
        let io = |e: std::io::Error| LendingError::DataSource { source_name: source, message: e.to_string() };
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        // A data-source file is another system's output: read at most MAX_RECORD_BYTES of it, so
        // a runaway or hostile file cannot exhaust memory.
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_RECORD_BYTES + 1), &mut text).map_err(io)?;
        if text.len() as u64 > MAX_RECORD_BYTES {
            return Err(LendingError::DataSource {
                source_name: source,
                message: format!("{source}/{key}.json is larger than {MAX_RECORD_BYTES} bytes"),
            });
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| LendingError::DataSource { source_name: source, message: format!("{source}/{key}.json: {e}") })
    }

    /// The applicant record `<dir>/applicant/<id>.json`; missing → [`LendingError::DataSource`].
    pub fn applicant_record(&self, id: &str) -> Result<Applicant, LendingError> {
        self.read("applicant", id)?.ok_or_else(|| LendingError::DataSource {
            source_name: "applicant",
            message: format!("no applicant record applicant/{id}.json in the lending data directory"),
        })
    }

    /// Writes a record (used to export simulated data and by tests).
    pub fn write<T: Serialize>(&self, source: &'static str, key: &str, value: &T) -> Result<(), LendingError> {
        check_key(key)?;
        let dir = self.dir.join(source);
        let io = |e: std::io::Error| LendingError::DataSource { source_name: source, message: e.to_string() };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| LendingError::DataSource { source_name: source, message: e.to_string() })?;
        std::fs::write(dir.join(format!("{key}.json")), text).map_err(io)
    }
}

impl BureauSource for FileSource {
    fn bureau_report(&self, id: &str) -> Result<Option<BureauReport>, LendingError> {
        self.read("bureau", id)
    }
}
impl SocialSecuritySource for FileSource {
    fn social_security(&self, id: &str) -> Result<Option<SocialSecurityRecord>, LendingError> {
        self.read("social_security", id)
    }
}
impl HousingFundSource for FileSource {
    fn housing_fund(&self, id: &str) -> Result<Option<HousingFundRecord>, LendingError> {
        self.read("housing_fund", id)
    }
}
impl TaxSource for FileSource {
    fn tax_record(&self, id: &str) -> Result<Option<TaxRecord>, LendingError> {
        self.read("tax", id)
    }
}
impl ErpSource for FileSource {
    fn receivable(&self, id: &str) -> Result<Option<ErpReceivable>, LendingError> {
        self.read("erp", id)
    }
}

/// The simulated credit profile behind an applicant id. Shares are of all ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimProfile {
    /// 35%: long clean history, good income.
    Prime,
    /// 25%: clean, average income.
    Good,
    /// 10%: little or no bureau history.
    ThinFile,
    /// 12%: one recent delinquency, high debt service, many inquiries (review band).
    Borderline,
    /// 12%: two or more delinquencies in the last 12 months.
    Delinquent,
    /// 6%: currently 90+ days past due somewhere.
    Severe,
}

/// Deterministic simulator of all five sources. The data of an applicant depends only on the
/// seed and the id (FNV-1a hash → ChaCha8), never on call order, so the demo bank and tests are
/// reproducible. Receivable ids are `<supplier id>:<anything>`; the supplier id is the part before
/// the first `:`. Dates are relative to `base_date` (default 2026-01-01).
#[derive(Debug, Clone)]
pub struct Simulator {
    pub seed: u64,
    pub base_date: NaiveDate,
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Simulator {
    pub fn new(seed: u64) -> Simulator {
        Simulator { seed, base_date: NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid date") }
    }

    pub fn with_base_date(mut self, date: NaiveDate) -> Simulator {
        self.base_date = date;
        self
    }

    fn rng(&self, id: &str, source: &str) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(fnv1a(&[&self.seed.to_le_bytes(), id.as_bytes(), source.as_bytes()]))
    }

    /// The profile of an applicant id.
    pub fn profile(&self, id: &str) -> SimProfile {
        let x = self.rng(id, "profile").gen_range(0..100);
        match x {
            0..=34 => SimProfile::Prime,
            35..=59 => SimProfile::Good,
            60..=69 => SimProfile::ThinFile,
            70..=81 => SimProfile::Borderline,
            82..=93 => SimProfile::Delinquent,
            _ => SimProfile::Severe,
        }
    }

    /// A synthetic applicant (age 20–66, KYC verified for 96%).
    pub fn applicant(&self, id: &str, kind: CustomerKind) -> Applicant {
        let mut r = self.rng(id, "applicant");
        let age_days = r.gen_range(20 * 365..66 * 365);
        let kyc = if r.gen_range(0..100) < 96 { KycStatus::Verified } else { KycStatus::Pending };
        let receivable_id = (kind != CustomerKind::Individual).then(|| format!("{id}:R{}", r.gen_range(1..=9)));
        Applicant {
            id: id.to_string(),
            kind,
            name: format!("Applicant {id}"),
            birth_date: Some(self.base_date - Duration::days(age_days)),
            kyc,
            receivable_id,
        }
    }

    fn income_minor(&self, id: &str) -> i64 {
        let mut r = self.rng(id, "income");
        let yuan = match self.profile(id) {
            SimProfile::Prime => r.gen_range(15_000..45_000),
            SimProfile::Good => r.gen_range(8_000..20_000),
            SimProfile::ThinFile => r.gen_range(5_000..10_000),
            SimProfile::Borderline => r.gen_range(5_000..12_000),
            SimProfile::Delinquent | SimProfile::Severe => r.gen_range(4_000..12_000),
        };
        i64::from(yuan) * 100
    }
}

impl BureauSource for Simulator {
    fn bureau_report(&self, id: &str) -> Result<Option<BureauReport>, LendingError> {
        let mut r = self.rng(id, "bureau");
        let profile = self.profile(id);
        if profile == SimProfile::ThinFile && r.gen_range(0..100) < 30 {
            return Ok(None);
        }
        let income = self.income_minor(id);
        let (score, delinq, max_dpd, current, inquiries, history, dsr): (u16, u32, u32, u32, u32, u32, u32) =
            match profile {
                SimProfile::Prime => {
                    (r.gen_range(730..880), 0, 0, 0, r.gen_range(0..2), r.gen_range(60..200), r.gen_range(0..20))
                }
                SimProfile::Good => {
                    (r.gen_range(660..760), 0, 0, 0, r.gen_range(0..3), r.gen_range(24..120), r.gen_range(10..35))
                }
                SimProfile::ThinFile => {
                    (r.gen_range(600..680), 0, 0, 0, r.gen_range(1..5), r.gen_range(0..12), r.gen_range(0..15))
                }
                SimProfile::Borderline => (
                    r.gen_range(590..660),
                    1,
                    r.gen_range(5..30),
                    0,
                    r.gen_range(3..7),
                    r.gen_range(24..72),
                    r.gen_range(38..58),
                ),
                SimProfile::Delinquent => (
                    r.gen_range(480..620),
                    r.gen_range(2..5),
                    r.gen_range(30..90),
                    if r.gen_range(0..4) == 0 { r.gen_range(5..30) } else { 0 },
                    r.gen_range(3..10),
                    r.gen_range(12..120),
                    r.gen_range(40..80),
                ),
                SimProfile::Severe => (
                    r.gen_range(350..520),
                    r.gen_range(3..8),
                    r.gen_range(90..200),
                    r.gen_range(90..200),
                    r.gen_range(5..12),
                    r.gen_range(12..120),
                    r.gen_range(60..120),
                ),
            };
        let service = income * i64::from(dsr) / 100;
        Ok(Some(BureauReport {
            score: Some(score),
            delinquencies_12m: delinq,
            max_dpd_12m: max_dpd,
            current_dpd: current,
            open_loans: (dsr / 12).max(u32::from(service > 0)),
            outstanding_debt_minor: service * 24,
            monthly_debt_service_minor: service,
            inquiries_3m: inquiries,
            history_months: history,
        }))
    }
}

impl SocialSecuritySource for Simulator {
    fn social_security(&self, id: &str) -> Result<Option<SocialSecurityRecord>, LendingError> {
        let mut r = self.rng(id, "social_security");
        let profile = self.profile(id);
        let (p_none, months) = match profile {
            SimProfile::Prime => (2, r.gen_range(36..180)),
            SimProfile::Good => (8, r.gen_range(12..96)),
            SimProfile::ThinFile => (40, r.gen_range(1..18)),
            SimProfile::Borderline => (20, r.gen_range(6..36)),
            SimProfile::Delinquent | SimProfile::Severe => (30, r.gen_range(1..60)),
        };
        if r.gen_range(0..100) < p_none {
            return Ok(None);
        }
        let active = profile == SimProfile::Prime || r.gen_range(0..100) < 85;
        let continuous = if active { r.gen_range(months.min(6)..=months) } else { 0 };
        Ok(Some(SocialSecurityRecord {
            active,
            months_contributed: months,
            continuous_months: continuous,
            monthly_base_minor: self.income_minor(id),
            employer: format!("Employer {}", r.gen_range(1..500)),
        }))
    }
}

impl HousingFundSource for Simulator {
    fn housing_fund(&self, id: &str) -> Result<Option<HousingFundRecord>, LendingError> {
        let mut r = self.rng(id, "housing_fund");
        let p_has = match self.profile(id) {
            SimProfile::Prime => 90,
            SimProfile::Good => 70,
            SimProfile::ThinFile => 20,
            SimProfile::Borderline => 35,
            SimProfile::Delinquent | SimProfile::Severe => 30,
        };
        if r.gen_range(0..100) >= p_has {
            return Ok(None);
        }
        let months: u32 = r.gen_range(6..150);
        let deposit = self.income_minor(id) * 24 / 100; // 12% employee + 12% employer
        Ok(Some(HousingFundRecord {
            active: r.gen_range(0..100) < 90,
            months_contributed: months,
            monthly_deposit_minor: deposit,
            balance_minor: deposit * i64::from(months) / 2,
        }))
    }
}

impl TaxSource for Simulator {
    fn tax_record(&self, id: &str) -> Result<Option<TaxRecord>, LendingError> {
        let mut r = self.rng(id, "tax");
        let profile = self.profile(id);
        if profile == SimProfile::ThinFile && r.gen_range(0..100) < 30 {
            return Ok(None);
        }
        // Tax paid last year in yuan; about 10% of businesses stay below the 20,000 threshold.
        let below = r.gen_range(0..100) < 10;
        let tax_yuan: i64 = if below {
            r.gen_range(3_000..20_000)
        } else {
            match profile {
                SimProfile::Prime => r.gen_range(80_000..900_000),
                SimProfile::Good => r.gen_range(40_000..300_000),
                SimProfile::ThinFile => r.gen_range(20_000..60_000),
                SimProfile::Borderline => r.gen_range(20_000..120_000),
                SimProfile::Delinquent | SimProfile::Severe => r.gen_range(20_000..150_000),
            }
        };
        let growth_pct: i64 = match profile {
            SimProfile::Prime => r.gen_range(0..30),
            SimProfile::Good => r.gen_range(-10..20),
            SimProfile::ThinFile => r.gen_range(-10..40),
            SimProfile::Borderline => r.gen_range(-35..0),
            SimProfile::Delinquent => r.gen_range(-50..-10),
            SimProfile::Severe => r.gen_range(-70..-30),
        };
        let rating = match profile {
            SimProfile::Prime => ["A", "A", "B"][r.gen_range(0..3)],
            SimProfile::Good => ["A", "B", "B", "M"][r.gen_range(0..4)],
            SimProfile::ThinFile => "M",
            SimProfile::Borderline => ["B", "M", "M", "C"][r.gen_range(0..4)],
            SimProfile::Delinquent => ["M", "C", "C"][r.gen_range(0..3)],
            SimProfile::Severe => ["C", "D"][r.gen_range(0..2)],
        };
        let registered = match profile {
            SimProfile::ThinFile => r.gen_range(6..30),
            _ => r.gen_range(24..240),
        };
        let year = self.base_date.year() - 1;
        let tax_minor = tax_yuan * 100;
        let prev_minor = tax_minor * 100 / (100 + growth_pct).max(1);
        let margin: i64 = r.gen_range(2..6); // tax ≈ 2–6% of revenue
        let years = vec![
            TaxYear { year, tax_paid_minor: tax_minor, revenue_minor: tax_minor * 100 / margin },
            TaxYear { year: year - 1, tax_paid_minor: prev_minor, revenue_minor: prev_minor * 100 / margin },
        ];
        // Monthly inflows: last year's revenue spread over 12 months with the trend in the profile.
        let monthly = tax_minor * 100 / margin / 12;
        let inflows = (0..12)
            .map(|m: i64| {
                let trend = 100 + growth_pct * (m - 6) / 12;
                let noise = r.gen_range(90..111);
                (monthly * trend / 100 * noise / 100).max(0)
            })
            .collect();
        Ok(Some(TaxRecord {
            credit_rating: rating.to_string(),
            registered_months: registered,
            years,
            monthly_inflows_minor: inflows,
        }))
    }
}

impl ErpSource for Simulator {
    fn receivable(&self, id: &str) -> Result<Option<ErpReceivable>, LendingError> {
        let Some((supplier, _)) = id.split_once(':') else { return Ok(None) };
        let mut r = self.rng(id, "erp");
        let profile = self.profile(supplier);
        let core_no = r.gen_range(1..20);
        let core_grade = [RiskGrade::AAA, RiskGrade::AA, RiskGrade::AA, RiskGrade::A, RiskGrade::BBB, RiskGrade::BB]
            [r.gen_range(0..6)];
        let issue = self.base_date - Duration::days(r.gen_range(5..60));
        let due = self.base_date + Duration::days(r.gen_range(60..200));
        let amount_yuan: i64 = r.gen_range(100_000..5_000_000);
        let confirmed = r.gen_range(0..100) < 88;
        let relationship = match profile {
            SimProfile::Prime | SimProfile::Good => r.gen_range(12..120),
            SimProfile::ThinFile => r.gen_range(1..8),
            _ => r.gen_range(3..36),
        };
        let docs = ["order", "invoice", "delivery_receipt"]
            .iter()
            .map(|kind| {
                use sha2::{Digest, Sha256};
                hex::encode(Sha256::digest(format!("{}:{id}:{kind}", self.seed).as_bytes()))
            })
            .collect();
        Ok(Some(ErpReceivable {
            id: id.to_string(),
            core_enterprise_id: format!("CORE{core_no:03}"),
            core_enterprise_name: format!("Core Enterprise {core_no}"),
            core_grade,
            supplier_id: supplier.to_string(),
            amount_minor: amount_yuan * 100,
            currency: Currency::CNY,
            issue_date: issue,
            due_date: due,
            confirmed,
            relationship_months: relationship,
            document_hashes: docs,
        }))
    }
}

/// Percentage change of the mean of the last 3 values against the mean of the 3 before.
pub fn recent_change_pct(series: &[i64]) -> Option<i64> {
    let n = series.len();
    if n < 6 {
        return None;
    }
    let recent: i64 = series[n - 3..].iter().sum();
    let before: i64 = series[n - 6..n - 3].iter().sum();
    (before > 0).then(|| (recent - before) * 100 / before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulator_is_deterministic_per_id_and_seed() {
        let a = Simulator::new(7);
        let b = Simulator::new(7);
        for id in ["C001", "C002", "ZZ-9"] {
            assert_eq!(a.bureau_report(id).unwrap(), b.bureau_report(id).unwrap());
            assert_eq!(a.tax_record(id).unwrap(), b.tax_record(id).unwrap());
            assert_eq!(a.applicant(id, CustomerKind::Individual), b.applicant(id, CustomerKind::Individual));
        }
        // Call order does not matter.
        let first = a.social_security("C003").unwrap();
        let _ = a.social_security("C004").unwrap();
        assert_eq!(a.social_security("C003").unwrap(), first);
        let other_seed = Simulator::new(8);
        let differs = (0..20).any(|i| {
            let id = format!("C{i}");
            a.bureau_report(&id).unwrap() != other_seed.bureau_report(&id).unwrap()
        });
        assert!(differs);
    }

    #[test]
    fn simulator_profiles_cover_all_kinds() {
        let s = Simulator::new(1);
        let mut seen = std::collections::HashSet::new();
        for i in 0..500 {
            seen.insert(s.profile(&format!("A{i}")));
        }
        assert_eq!(seen.len(), 6);
    }

    #[test]
    fn file_source_reads_what_was_written_and_rejects_bad_keys() {
        let dir = std::env::temp_dir().join(format!("lending-files-{}", std::process::id()));
        let files = FileSource::new(&dir);
        let sim = Simulator::new(3);
        let report = sim.bureau_report("P1").unwrap().unwrap();
        files.write("bureau", "P1", &report).unwrap();
        assert_eq!(files.bureau_report("P1").unwrap(), Some(report));
        assert_eq!(files.bureau_report("P2").unwrap(), None);
        assert!(matches!(files.bureau_report("../etc/passwd"), Err(LendingError::InvalidKey(_))));
        std::fs::create_dir_all(dir.join("tax")).unwrap();
        std::fs::write(dir.join("tax").join("P1.json"), "{not json").unwrap();
        assert!(matches!(files.tax_record("P1"), Err(LendingError::DataSource { .. })));
        let sources = DataSources::from_dir(&dir);
        let applicant = sim.applicant("P1", CustomerKind::Individual);
        let snap = sources.collect(&applicant, &Product::instant_consumer(), sim.base_date).unwrap();
        assert!(snap.bureau.is_some() && snap.social_security.is_none());
        // Applicant records: missing is a clear error, written ones read back.
        let e = files.applicant_record("P1").unwrap_err();
        assert!(matches!(&e, LendingError::DataSource { source_name: "applicant", .. }), "{e}");
        assert!(e.to_string().contains("P1.json"), "{e}");
        files.write("applicant", "P1", &applicant).unwrap();
        assert_eq!(files.applicant_record("P1").unwrap(), applicant);
        // Partial data still gives a decision with reasons (never a panic).
        let d = crate::decide(&Product::instant_consumer(), &snap, &crate::NoFraudCheck, chrono::Utc::now());
        assert!(!d.reasons.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
