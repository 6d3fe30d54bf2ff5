//! Servicing: repayments, draws, prepayments, write-offs, the loan view reconciled with the
//! ledger, lists, and the manual review queue.

use super::*;

impl LendingService {
    // ---- loan operations --------------------------------------------------------------------

    pub async fn loan(&self, id: LoanId) -> Result<LoanRecord> {
        self.store.loan(id).await?.ok_or_else(|| LendingPlatformError::NotFound("loan", id.0.to_string()))
    }

    /// Runs `f` on the loan dated `date` (default: today, or the day after the last end of day
    /// if that is later), after bringing the loan's end of day up to the day before. The
    /// catch-up accruals and the operation's postings go to the ledger as one batch, and the
    /// new state is saved in the same transaction.
    async fn operate<T>(
        &self,
        id: LoanId,
        date: Option<NaiveDate>,
        payer: Option<AccountId>,
        f: impl FnOnce(&mut Loan, NaiveDate) -> Result<(T, Vec<Posting>), LendingError>,
    ) -> Result<(LoanRecord, Loan, NaiveDate, T, Vec<Posting>, Vec<ledger::TransferId>)> {
        let rec = self.loan(id).await?;
        self.operate_on(rec, date, payer, f, |_, _, _| Ok(Vec::new())).await
    }

    /// [`Self::operate`] on a loaded record, with `extra` statements (from the new state, the
    /// date and the operation's own postings) saved in the same transaction as the loan.
    async fn operate_on<T>(
        &self,
        rec: LoanRecord,
        date: Option<NaiveDate>,
        payer: Option<AccountId>,
        f: impl FnOnce(&mut Loan, NaiveDate) -> Result<(T, Vec<Posting>), LendingError>,
        extra: impl FnOnce(&Loan, NaiveDate, &[Posting]) -> Result<Vec<Statement>>,
    ) -> Result<(LoanRecord, Loan, NaiveDate, T, Vec<Posting>, Vec<ledger::TransferId>)> {
        let id = rec.loan.id;
        let mut loan = rec.loan.clone();
        let date = date.unwrap_or_else(|| {
            let next = loan.last_eod.and_then(|d| d.succ_opt()).unwrap_or(loan.start_date);
            self.clock.today().max(next)
        });
        let mut postings = Vec::new();
        if let Some(prev) = date.pred_opt() {
            if prev >= loan.start_date && loan.last_eod.is_none_or(|l| l < prev) {
                postings.extend(eod(&mut loan, prev)?.postings);
            }
        }
        let (out, own) = f(&mut loan, date)?;
        let statements = extra(&loan, date, &own)?;
        postings.extend(own);
        let parties = rec.parties(payer);
        let statements = [store::save_loans([&LoanSave::new(&rec, &loan)?]), statements].concat();
        let saved = if postings.is_empty() {
            self.store.execute(&statements).await.map(|()| Vec::new())
        } else {
            // The new state commits in the same transaction as the transfers, or neither does.
            let along: AlongWithBatch =
                Box::new(move |outcomes| if check(outcomes).is_ok() { statements } else { Vec::new() });
            self.post(id, &format!("v{}", rec.version), &postings, &parties, along).await
        };
        let transfers = match saved {
            // The version moved: the row check failed, or another operation took this
            // version's transfer ids first.
            Err(LendingPlatformError::Stale(_))
            | Err(LendingPlatformError::Ledger(LedgerError::AlongConflict(_)))
            | Err(LendingPlatformError::Rejected { code: TransferError::IdempotencyConflict, .. }) => {
                return Err(LendingPlatformError::Conflict(id.0.to_string()))
            }
            other => other?,
        };
        Ok((rec, loan, date, out, postings, transfers))
    }

    /// A repayment through the waterfall, debited from the repayment account (or `from`).
    pub async fn repay(
        &self,
        id: LoanId,
        amount: Amount,
        date: Option<NaiveDate>,
        from: Option<AccountId>,
    ) -> Result<OperationOutcome> {
        let (_, loan, date, a, postings, transfers) =
            self.operate(id, date, from, |loan, d| loan.repay(amount, d)).await?;
        Ok(OperationOutcome { loan, date, allocation: Some(a), postings, transfers })
    }

    /// A draw on a revolving line, credited to the borrower's deposit account.
    pub async fn draw(&self, id: LoanId, amount: Amount, date: Option<NaiveDate>) -> Result<OperationOutcome> {
        let (_, loan, date, (), postings, transfers) =
            self.operate(id, date, None, |loan, d| Ok(((), loan.draw(amount, d)?))).await?;
        Ok(OperationOutcome { loan, date, allocation: None, postings, transfers })
    }

    /// A partial or full prepayment.
    pub async fn prepay(
        &self,
        id: LoanId,
        amount: Amount,
        mode: PrepayMode,
        date: Option<NaiveDate>,
        from: Option<AccountId>,
    ) -> Result<OperationOutcome> {
        let (_, loan, date, a, postings, transfers) =
            self.operate(id, date, from, |loan, d| loan.prepay(amount, d, mode)).await?;
        Ok(OperationOutcome { loan, date, allocation: Some(a), postings, transfers })
    }

    /// Writes off a loan that is at least [`WRITE_OFF_MIN_DPD`] days past due (after bringing its
    /// end of day up to the day before; `force` skips the check). Principal, interest, penalty
    /// and fees are charged to `gl.loan_loss_allowance` as one linked batch with deterministic
    /// ids (loan, version, sequence: a retry replays), the loan becomes `written_off` and the
    /// write-off (reason, analyst, amounts) is recorded in the transaction that saves the loan.
    /// Writing off a written-off loan again returns it unchanged.
    pub async fn write_off(&self, id: LoanId, input: &WriteOffInput, analyst: &Analyst) -> Result<WriteOffOutcome> {
        let reason = input.reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(LendingPlatformError::Invalid("reason must be 1..500 characters".into()));
        }
        let rec = self.loan(id).await?;
        if rec.loan.status == lending::LoanStatus::WrittenOff {
            return Ok(WriteOffOutcome {
                date: rec.loan.closed_on.unwrap_or_else(|| self.clock.today()),
                loan: rec.loan,
                charged_off: ChargedOff::default(),
                postings: Vec::new(),
                transfers: Vec::new(),
                already_written_off: true,
            });
        }
        self.ensure_gl().await?;
        let force = input.force;
        let (_, loan, date, charged_off, postings, transfers) = self
            .operate_on(
                rec,
                input.date,
                None,
                |loan, d| {
                    let own = loan.write_off_overdue(d, WRITE_OFF_MIN_DPD, force)?;
                    Ok((charged(&own), own))
                },
                |loan, d, own| {
                    Ok(vec![store::insert_write_off(
                        loan.id,
                        d,
                        reason,
                        force,
                        &analyst.id,
                        &analyst.role,
                        &charged(own),
                    )])
                },
            )
            .await?;
        Ok(WriteOffOutcome { loan, date, charged_off, postings, transfers, already_written_off: false })
    }

    /// Posted balances of the loan's four ledger accounts.
    pub async fn ledger_balances(&self, rec: &LoanRecord) -> Result<LedgerBalances> {
        let mut b = [0i64; 4];
        for (i, (role, _)) in LOAN_ROLES.iter().enumerate() {
            b[i] = self.ledger.balance(rec.account(*role), None).await?.posted;
        }
        Ok(LedgerBalances {
            principal: b[0],
            interest_receivable: b[1],
            penalty_receivable: b[2],
            fee_receivable: b[3],
        })
    }

    /// The loan, its schedule, its ledger balances and alerts.
    pub async fn view(&self, id: LoanId) -> Result<LoanView> {
        let rec = self.loan(id).await?;
        let ledger = self.ledger_balances(&rec).await?;
        let l = &rec.loan;
        let expected = LedgerBalances {
            principal: l.principal,
            interest_receivable: l.interest_receivable(),
            penalty_receivable: l.penalty,
            fee_receivable: l.fees,
        };
        let mut alerts = loan_alerts(l);
        alerts.extend(self.early_warnings(&rec).await.unwrap_or_default());
        Ok(LoanView {
            bucket: store::bucket_name(l.bucket()),
            schedule: l.schedule.clone(),
            customer_account: rec.customer_account,
            repayment_account: rec.repayment_account,
            applicant_id: rec.applicant_id.clone(),
            reconciled: ledger == expected,
            ledger,
            alerts,
            loan: rec.loan,
        })
    }

    /// Early-warning signals: the data at decision time against the data now (simulated
    /// sources), plus the tax inflow trend.
    pub(super) async fn early_warnings(&self, rec: &LoanRecord) -> Result<Vec<Alert>> {
        let contract = self
            .store
            .contract(&rec.loan.contract_id.0.to_string())
            .await?
            .ok_or_else(|| LendingPlatformError::Corrupt("loan without contract".into()))?;
        let Some(decision) = self.store.decision(&contract.decision_id.0.to_string()).await? else {
            return Ok(Vec::new());
        };
        let product = self.catalog.get(&decision.product_code)?;
        let current = self.sources.collect(&decision.inputs.applicant, product, self.clock.today())?;
        let inflows = current.tax.as_ref().map(|t| t.monthly_inflows_minor.clone()).unwrap_or_default();
        Ok(early_warnings(&decision.inputs, &current, &inflows))
    }

    pub async fn list_loans(
        &self,
        status: Option<&str>,
        bucket: Option<&str>,
        applicant: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<LoanSummary>> {
        self.store.list_loans(status, bucket, applicant, after.unwrap_or(""), limit.clamp(1, 1000)).await
    }

    pub async fn review_queue(&self, limit: i64) -> Result<Vec<ReviewItem>> {
        self.store.review_queue(limit.clamp(1, 1000)).await
    }

    /// An analyst approves a decision in the review queue (see [`lending::approve_review`]); an
    /// offer can then be made. Approving an approved item again returns the stored decision;
    /// a declined one is `review_already_decided`.
    pub async fn approve_review(&self, id: &str, input: &ReviewApproval, analyst: &Analyst) -> Result<Decision> {
        self.settle_review(id, Outcome::Approve, |d, product| {
            approve_review(d, product, input.grade, input.limit_minor, &input.note, analyst)
        })
        .await
    }

    /// An analyst declines a decision in the review queue with a listed reason code (see
    /// [`lending::decline_review`]); the customer sees the reason on the application.
    pub async fn decline_review(&self, id: &str, input: &ReviewDecline, analyst: &Analyst) -> Result<Decision> {
        self.settle_review(id, Outcome::Decline, |d, _| decline_review(d, &input.reason_code, &input.note, analyst))
            .await
    }

    pub(super) async fn settle_review(
        &self,
        id: &str,
        want: Outcome,
        f: impl FnOnce(&Decision, &Product) -> Result<Decision, LendingError>,
    ) -> Result<Decision> {
        let done = if want == Outcome::Approve { "approved" } else { "declined" };
        let not_found = || LendingPlatformError::NotFound("review_item", id.to_string());
        let status = self.store.review_status(id).await?.ok_or_else(not_found)?;
        match status.as_str() {
            "open" => {}
            s if s == done => return self.decision(id).await,
            s => return Err(bad(LendingError::ReviewAlreadyDecided(s.to_string()))),
        }
        let decision = self.decision(id).await?;
        let product = self.catalog.get(&decision.product_code)?;
        // The decision read after the status may already carry a concurrent reviewer's outcome.
        let decided = match f(&decision, product) {
            Err(LendingError::NotInReview(_)) if decision.outcome != Outcome::Review => None,
            other => Some(other?),
        };
        if let Some(decided) = decided {
            let (analyst, at) = decided
                .manual_review
                .as_ref()
                .map(|r| (r.analyst.clone(), r.decided_at.timestamp_micros()))
                .unwrap_or_else(|| (process::event::SYSTEM.into(), self.clock.now_micros()));
            let mut attributes = process::Attributes::default().product(&decided.product_code).outcome(done);
            if let Some(limit) = decided.limit {
                attributes = attributes.amount(limit.minor, limit.currency.code());
            }
            let event = process::ProcessEvent::new(process::Activity::Reviewed, id, at, analyst).with(attributes);
            if self.store.decide_review(&decided, done, &event).await? {
                return Ok(decided);
            }
        }
        // Decided concurrently: answer as a retry would be answered.
        match self.store.review_status(id).await?.ok_or_else(not_found)? {
            s if s == done => self.decision(id).await,
            s => Err(bad(LendingError::ReviewAlreadyDecided(s))),
        }
    }
}

/// What write-off postings charged off, per receivable.
fn charged(postings: &[Posting]) -> ChargedOff {
    let mut c = ChargedOff::default();
    for p in postings.iter().filter(|p| p.purpose == lending::PostingPurpose::WriteOff) {
        let m = p.amount.minor;
        match p.credit {
            lending::AccountRole::LoanPrincipal => c.principal += m,
            lending::AccountRole::InterestReceivable => c.interest += m,
            lending::AccountRole::PenaltyReceivable => c.penalty += m,
            lending::AccountRole::FeeReceivable => c.fees += m,
            _ => {}
        }
        c.total += m;
    }
    c
}
