//! Origination: application (decided with the risk engine's fraud check), offer, acceptance,
//! contract and the loan opened with its disbursement in one ledger transaction.

use super::*;

impl LendingService {
    // ---- application, decision, offer, acceptance -------------------------------------------

    /// Collects the (simulated) external data, decides with the fraud check and stores the
    /// decision; a `review` outcome enters the review queue.
    pub async fn apply(&self, input: &ApplyInput) -> Result<Decision> {
        self.apply_at(input, self.clock.now()).await
    }

    pub async fn apply_at(&self, input: &ApplyInput, now: DateTime<Utc>) -> Result<Decision> {
        self.apply_at_with(input, now, |_| Vec::new()).await
    }

    /// [`apply`](Self::apply), with the statements `along` builds from the decision committed in
    /// the decision's own transaction (a channel's record of the application, its event): both
    /// or neither.
    pub async fn apply_with(
        &self,
        input: &ApplyInput,
        along: impl FnOnce(&Decision) -> Vec<Statement>,
    ) -> Result<Decision> {
        self.apply_at_with(input, self.clock.now(), along).await
    }

    async fn apply_at_with(
        &self,
        input: &ApplyInput,
        now: DateTime<Utc>,
        along: impl FnOnce(&Decision) -> Vec<Statement>,
    ) -> Result<Decision> {
        // How long the automated decision takes (the KPI system's decision time).
        let started = std::time::Instant::now();
        if input.applicant_id.is_empty() || input.applicant_id.len() > 100 {
            return Err(LendingPlatformError::Invalid("applicant_id must be 1..100 characters".into()));
        }
        let product = self.catalog.get(&input.product_code)?;
        let kind = input.kind.unwrap_or(match product.kind {
            ProductKind::InstantConsumer => CustomerKind::Individual,
            _ => CustomerKind::Sme,
        });
        // One decision per application: a fresh id even for the same applicant.
        let id = Uuid::now_v7();
        // The process log of the application: each step at `now` plus the time it took to get
        // there, so the steps of one call keep their order and their measured service times.
        let mut steps = ProcessSteps::new(id, now, started, product, input);
        let applicant = match &self.applicants {
            ApplicantSource::Simulated(sim) => sim.applicant(&input.applicant_id, kind),
            // The bank's record decides the kind; a missing record is a data-source error.
            ApplicantSource::Files(files) => files.applicant_record(&input.applicant_id)?,
        };
        let snapshot = self.sources.collect(&applicant, product, now.date_naive())?;
        steps.data_collected(&snapshot);
        // The engine sees only applications that pass eligibility (the same point at which the
        // pure decision asks for a fraud verdict).
        let fraud = if lending::eligibility(product, &snapshot).is_empty() {
            let risk = self.risk.as_ref().ok_or(LendingPlatformError::FraudCheckUnavailable)?;
            let event =
                crate::fraud::application_event(format!("loan-application:{id}"), input, &applicant, product, now)?;
            let verdict = crate::fraud::check(risk, &event).await?;
            steps.step(process::Activity::FraudChecked, Some(fraud_outcome(&verdict)));
            verdict
        } else {
            lending::FraudOutcome::allow()
        };
        let mut decision = decide(product, &snapshot, &fraud, now);
        decision.id = lending::DecisionId(id);
        steps.decided(&decision);
        let elapsed = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
        let extra = along(&decision);
        self.store.insert_decision(&decision, elapsed, &steps.events, &extra).await?;
        Ok(decision)
    }

    pub async fn decision(&self, id: &str) -> Result<Decision> {
        self.store.decision(id).await?.ok_or_else(|| LendingPlatformError::NotFound("application", id.into()))
    }

    /// The offer of an approved decision (idempotent per decision).
    pub async fn offer(&self, decision_id: &str) -> Result<Offer> {
        let decision = self.decision(decision_id).await?;
        let product = self.catalog.get(&decision.product_code)?;
        let now = self.clock.now();
        let offer = make_offer(&decision, product, now)?;
        let event = process::ProcessEvent::new(
            process::Activity::OfferMade,
            decision.id.0.to_string(),
            now.timestamp_micros(),
            process::event::SYSTEM,
        )
        .with(
            process::Attributes::default()
                .product(&decision.product_code)
                .amount(offer.limit.minor, offer.limit.currency.code()),
        );
        self.store.insert_offer(&offer, &event).await
    }

    /// Accepts an offer: contract, loan, and the disbursement through the ledger.
    pub async fn accept(&self, offer_id: &str, input: &AcceptInput) -> Result<AcceptOutcome> {
        self.accept_with(offer_id, input, |_| Vec::new()).await
    }

    /// [`accept`](Self::accept), with the statements `along` builds from the contract (whose id
    /// is the loan's) committed in the disbursement's transaction (not run when the loan exists
    /// already).
    pub async fn accept_with(
        &self,
        offer_id: &str,
        input: &AcceptInput,
        along: impl FnOnce(&Contract) -> Vec<Statement>,
    ) -> Result<AcceptOutcome> {
        let offer = self
            .store
            .offer(offer_id)
            .await?
            .ok_or_else(|| LendingPlatformError::NotFound("offer", offer_id.into()))?;
        let currency = input.currency.unwrap_or(offer.limit.currency);
        let req = AcceptRequest {
            amount: Amount::new(input.amount, currency),
            term_months: input.term_months,
            method: input.method,
            start_date: input.start_date.unwrap_or_else(|| self.clock.today()),
            accepted_at: self.clock.now(),
        };
        let contract = accept(&offer, &req)?;
        let extra = along(&contract);
        let parties = Parties {
            customer: input.deposit_account_id,
            payer: input.deposit_account_id,
            scheme: AccountScheme::Clustered,
        };
        let attributes = process::Attributes::default()
            .product(&contract.product_code)
            .amount(contract.principal.minor, contract.principal.currency.code());
        let case =
            LoggedCase { id: offer.decision_id.0.to_string(), at: req.accepted_at.timestamp_micros(), attributes };
        self.open_loan_logged(contract, parties, extra, Some(case)).await
    }

    /// Opens a loan straight from a contract (demo data, benchmarks, migrated loans):
    /// disbursed to `customer`, repaid from `payer`.
    pub async fn open_contract(
        &self,
        contract: Contract,
        customer: AccountId,
        payer: AccountId,
    ) -> Result<AcceptOutcome> {
        self.open_loan(contract, Parties { customer, payer, scheme: AccountScheme::Clustered }, Vec::new()).await
    }

    /// Opens the loan of a contract: ledger accounts, disbursement batch, then the stored rows.
    pub(super) async fn open_loan(
        &self,
        contract: Contract,
        parties: Parties,
        extra: Vec<Statement>,
    ) -> Result<AcceptOutcome> {
        self.open_loan_logged(contract, parties, extra, None).await
    }

    /// [`Self::open_loan`], logging `offer_accepted` and (when money moves) `disbursed` to the
    /// application's case in the same transaction.
    async fn open_loan_logged(
        &self,
        contract: Contract,
        parties: Parties,
        extra: Vec<Statement>,
        case: Option<LoggedCase>,
    ) -> Result<AcceptOutcome> {
        let loan_id = LoanId(contract.id.0);
        if let Some(rec) = self.store.loan(loan_id).await? {
            return Ok(AcceptOutcome { contract, loan: rec.loan, transfers: Vec::new(), created: false });
        }
        for acct in [parties.customer, parties.payer] {
            let a = self.ledger.account(acct).await?;
            if a.currency != contract.principal.currency {
                return Err(bad(LendingError::CurrencyMismatch {
                    expected: contract.principal.currency,
                    got: a.currency,
                }));
            }
        }
        self.ensure_gl().await?;
        self.ledger
            .open_accounts(&accounts::loan_accounts(loan_id, &contract.applicant_id, contract.principal.currency))
            .await?;
        let (loan, postings) = Loan::open(&contract);
        let rec = LoanRecord {
            loan: loan.clone(),
            applicant_id: contract.applicant_id.clone(),
            customer_account: parties.customer,
            repayment_account: parties.payer,
            version: 1,
            account_scheme: parties.scheme,
        };
        let mut statements = [LendingStore::insert_contract_loan(&contract, &rec)?, extra].concat();
        if let Some(case) = case {
            let event = |activity| {
                process::ProcessEvent::new(activity, case.id.clone(), case.at, process::event::CUSTOMER)
                    .with(case.attributes.clone())
            };
            statements.push(process_platform::event_statement(&event(process::Activity::OfferAccepted)));
            if !postings.is_empty() {
                let mut disbursed = event(process::Activity::Disbursed);
                disbursed.resource = process::event::SYSTEM.into();
                statements.push(process_platform::event_statement(&disbursed));
            }
        }
        let transfers = if postings.is_empty() {
            self.store.execute(&statements).await?;
            Vec::new()
        } else {
            // The disbursement and the stored loan commit together.
            let along: AlongWithBatch =
                Box::new(move |outcomes| if check(outcomes).is_ok() { statements } else { Vec::new() });
            self.post(loan_id, "v0", &postings, &parties, along).await?
        };
        Ok(AcceptOutcome { contract, loan, transfers, created: true })
    }

    /// Submits one operation's postings as one linked chain (any failed leg fails all), with
    /// the statements `along` returns committed in the same transaction.
    pub(super) async fn post(
        &self,
        loan: LoanId,
        op: &str,
        postings: &[Posting],
        parties: &Parties,
        along: AlongWithBatch,
    ) -> Result<Vec<ledger::TransferId>> {
        if postings.is_empty() {
            return Ok(Vec::new());
        }
        let requests = accounts::transfers(loan, op, postings, parties);
        if requests.len() > MAX_BATCH {
            return Err(LendingPlatformError::Invalid(format!("{} postings in one operation", requests.len())));
        }
        let ids = requests.iter().map(|r| r.id).collect();
        let outcomes = self.ledger.submit_batch_with(requests, along).await?;
        check(&outcomes)?;
        Ok(ids)
    }
}

/// The application case an acceptance is logged to.
struct LoggedCase {
    id: String,
    at: i64,
    attributes: process::Attributes,
}

fn fraud_outcome(f: &lending::FraudOutcome) -> String {
    match f.verdict {
        lending::FraudVerdict::Allow => "allow",
        lending::FraudVerdict::Review => "review",
        lending::FraudVerdict::Reject => "reject",
    }
    .to_string()
}

/// The process events of one application, timed from the start of the call.
struct ProcessSteps {
    case: String,
    start: i64,
    started: std::time::Instant,
    /// Where the previous step ended (micros since `started`).
    last: i64,
    attributes: process::Attributes,
    events: Vec<process::ProcessEvent>,
}

impl ProcessSteps {
    fn new(id: Uuid, now: DateTime<Utc>, started: std::time::Instant, product: &Product, input: &ApplyInput) -> Self {
        let mut attributes =
            process::Attributes::default().product(&product.code).channel(input.channel.map_or("web", |c| c.as_str()));
        if let Some(amount) = input.amount {
            attributes = attributes.amount(amount, product.currency.code());
        }
        let case = id.to_string();
        let start = now.timestamp_micros();
        let received = process::ProcessEvent::new(
            process::Activity::ApplicationReceived,
            case.clone(),
            start,
            process::event::CUSTOMER,
        )
        .with(attributes.clone());
        ProcessSteps { case, start, started, last: 0, attributes, events: vec![received] }
    }

    /// A system step that ends now, its service time measured since the previous step.
    fn step(&mut self, activity: process::Activity, outcome: Option<String>) {
        let at = i64::try_from(self.started.elapsed().as_micros()).unwrap_or(i64::MAX).max(self.last);
        let mut attributes = self.attributes.clone().service(at - self.last);
        attributes.outcome = outcome;
        self.last = at;
        self.events.push(
            process::ProcessEvent::new(
                activity,
                self.case.clone(),
                self.start.saturating_add(at),
                process::event::SYSTEM,
            )
            .with(attributes),
        );
    }

    fn data_collected(&mut self, snapshot: &lending::AdapterSnapshot) {
        use process::DataSource as S;
        let mut sources = vec![S::Bureau];
        if snapshot.social_security.is_some() {
            sources.push(S::SocialSecurity);
        }
        if snapshot.housing_fund.is_some() {
            sources.push(S::HousingFund);
        }
        if snapshot.tax.is_some() {
            sources.push(S::Tax);
        }
        if snapshot.receivable.is_some() {
            sources.push(S::Erp);
        }
        for s in sources {
            self.step(process::Activity::DataCollected(s), None);
        }
    }

    fn decided(&mut self, d: &Decision) {
        if d.score.is_some() {
            self.step(process::Activity::Scored, d.grade.map(|g| format!("{g:?}")));
        }
        let activity = match d.outcome {
            Outcome::Approve => process::Activity::AutoApproved,
            Outcome::Decline => process::Activity::AutoDeclined,
            Outcome::Review => process::Activity::QueuedForReview,
        };
        if let Some(limit) = d.limit {
            self.attributes = self.attributes.clone().amount(limit.minor, limit.currency.code());
        }
        self.step(activity, Some(d.outcome.as_str().to_string()));
    }
}
