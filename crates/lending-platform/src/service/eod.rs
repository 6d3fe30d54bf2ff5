//! End of day: every open loan falls due, accrues and ages, page by page, each page's
//! postings and new states in the ledger's own transactions.

use super::*;

impl LendingService {
    // ---- end of day -------------------------------------------------------------------------

    /// End of day for `date` over every open loan, page by page: each page's accruals go to the
    /// ledger as batches of per-loan linked chains, and each batch saves its loans' new states
    /// in the same transaction. Idempotent per date: once a date is done, running it again
    /// reports `already_run` and writes nothing; a run that stopped half-way resumes (loans
    /// already at `date` are skipped). `progress(done, total)` after each page.
    pub async fn run_eod(&self, date: NaiveDate, mut progress: impl FnMut(u64, u64) + Send) -> Result<EodReport> {
        let _one_at_a_time = self.eod.lock().await;
        let t0 = std::time::Instant::now();
        if let Some((status, report)) = self.store.eod_run(date).await? {
            if status == "done" {
                let mut r: EodReport = report.map(|r| serde_json::from_str(&r)).transpose()?.unwrap_or_default();
                r.already_run = true;
                r.date = date;
                return Ok(r);
            }
        }
        let last = self.store.last_done_eod().await?.and_then(|l| NaiveDate::parse_from_str(&l, "%Y-%m-%d").ok());
        // Bounded work: at most `max_gap_days` after the last run and `max_days_ahead` after today.
        let limits = self.eod_limits;
        let ahead = self.clock.today() + chrono::Days::new(u64::from(limits.max_days_ahead));
        let latest = last.map_or(ahead, |l| ahead.min(l + chrono::Days::new(u64::from(limits.max_gap_days))));
        if date > latest {
            return Err(LendingPlatformError::EodDateOutOfRange { requested: date, earliest: last, latest });
        }
        if let Some(last) = last {
            if last > date {
                return Err(bad(LendingError::EodDateInPast { requested: date, last }));
            }
        }
        self.ensure_gl().await?;
        self.store.execute(&[store::start_eod(date)]).await?;
        let total = self.store.count_open_loans().await?.max(0) as u64;
        let mut report = EodReport { date, ..Default::default() };
        // Pages are read one ahead: the next page is read and parsed (on another thread) while
        // this one's ledger batches commit. Pages cover disjoint id ranges, so this page's
        // commits never touch the next page's loans.
        let mut cursor = String::new();
        let mut next = Some(self.read_page(cursor.clone()));
        while let Some(pending) = next.take() {
            let read_started = std::time::Instant::now();
            let mut page = pending.await.map_err(|e| LendingPlatformError::Internal(format!("page reader: {e}")))??;
            report.phases_millis.read += read_started.elapsed().as_millis() as u64;
            let Some(last) = page.last().map(|r| r.loan.id.0.to_string()) else { break };
            if page.len() as i64 == EOD_PAGE {
                next = Some(self.read_page(last.clone()));
            }
            let mut attempt = 1;
            loop {
                let changed = match self.eod_page(&page, date, &mut report).await {
                    Err(LendingPlatformError::Ledger(LedgerError::AlongConflict(e))) => {
                        tracing::info!(attempt, error = %e, "end of day: a batch's loans changed meanwhile");
                        1
                    }
                    other => other?,
                };
                if changed == 0 {
                    break;
                }
                if attempt == EOD_PAGE_ATTEMPTS {
                    report.loans_failed += changed;
                    break;
                }
                // Loans of the page were changed (a repayment) since it was read. What committed
                // is at `date` now and is skipped; the rest is read again (up to the page's
                // end: the next page is already read).
                attempt += 1;
                page = self.store.open_loans_after(&cursor, EOD_PAGE).await?;
                page.retain(|r| r.loan.id.0.to_string() <= last);
            }
            report.loans_seen += page.len() as u64;
            progress(report.loans_seen.min(total), total);
            cursor = last;
        }
        report.millis = t0.elapsed().as_millis() as u64;
        self.store.execute(&[store::finish_eod(date, &serde_json::to_string(&report)?)]).await?;
        Ok(report)
    }

    /// Reads the page of open loans after `after` on another task.
    pub(super) fn read_page(&self, after: String) -> tokio::task::JoinHandle<Result<Vec<LoanRecord>>> {
        let store = self.store.clone();
        tokio::spawn(async move { store.open_loans_after(&after, EOD_PAGE).await })
    }

    /// One page of end of day. Each ledger batch of whole per-loan chains commits together with
    /// the saved states of the loans whose chains it created, so a loan's state and its ledger
    /// accounts never disagree, even after a crash. A loan changed since the page was read
    /// rolls its batch back ([`LedgerError::AlongConflict`]); the caller re-reads the page.
    /// Returns how many loans were left alone because they changed meanwhile.
    pub(super) async fn eod_page(&self, page: &[LoanRecord], date: NaiveDate, report: &mut EodReport) -> Result<u64> {
        let mut moved = 0;
        let compute_started = std::time::Instant::now();
        // (new state, postings, save) of loans that changed.
        let mut work: Vec<(&LoanRecord, Loan, Vec<Posting>)> = Vec::new();
        for rec in page {
            let mut loan = rec.loan.clone();
            if date < loan.start_date {
                continue;
            }
            match eod(&mut loan, date) {
                Ok(out) if out.already_run => {}
                Ok(out) => work.push((rec, loan, out.postings)),
                Err(e) => {
                    tracing::warn!(loan = %rec.loan.id.0, error = %e, "end of day skipped a loan");
                    report.loans_failed += 1;
                }
            }
        }
        // Serialized once, here; each batch below moves its loans' rows into its transaction.
        let mut saves =
            work.iter().map(|(rec, loan, _)| LoanSave::new(rec, loan).map(Some)).collect::<Result<Vec<_>>>()?;
        report.phases_millis.compute += compute_started.elapsed().as_millis() as u64;
        let ledger_started = std::time::Instant::now();
        let mut start = 0;
        while start < work.len() {
            let mut end = start;
            let mut requests: Vec<TransferRequest> = Vec::new();
            // (index into work, first request, chain length)
            let mut spans = Vec::new();
            while end < work.len() {
                let (rec, _, postings) = &work[end];
                if !requests.is_empty() && requests.len() + postings.len() > MAX_BATCH {
                    break;
                }
                let parties = rec.parties(None);
                let chain = accounts::transfers(rec.loan.id, &format!("v{}", rec.version), postings, &parties);
                spans.push((end, requests.len(), chain.len()));
                requests.extend(chain);
                end += 1;
            }
            let created =
                |outcomes: &[TransferOutcome], from: usize, len: usize| check(&outcomes[from..from + len]).is_ok();
            let batch_saves: Vec<LoanSave> = saves[start..end].iter_mut().filter_map(Option::take).collect();
            let outcomes = if requests.is_empty() {
                self.store.execute(&store::save_loans(&batch_saves)).await?;
                Vec::new()
            } else {
                let batch_spans = spans.clone();
                let along: AlongWithBatch = Box::new(move |outcomes| {
                    let saved = batch_spans
                        .iter()
                        .filter(|(_, from, len)| *len == 0 || created(outcomes, *from, *len))
                        .map(|(i, _, _)| &batch_saves[i - start]);
                    store::save_loans(saved)
                });
                self.ledger.submit_batch_with(requests, along).await?
            };
            for (i, from, len) in spans {
                if len > 0 && !created(&outcomes, from, len) {
                    match check(&outcomes[from..from + len]) {
                        // Its transfer ids (loan, version) were taken: the loan was changed
                        // since the page was read. Read again rather than fail it.
                        Err(LendingPlatformError::Rejected { code: TransferError::IdempotencyConflict, .. }) => {
                            moved += 1
                        }
                        _ => report.loans_failed += 1,
                    }
                    continue;
                }
                let (_, loan, postings) = &work[i];
                report.loans_processed += 1;
                report.postings += postings.len() as u64;
                for p in postings {
                    match p.purpose {
                        lending::PostingPurpose::InterestAccrual => report.interest_accrued_minor += p.amount.minor,
                        lending::PostingPurpose::PenaltyAccrual => report.penalty_accrued_minor += p.amount.minor,
                        _ => {}
                    }
                }
                if loan.status == lending::LoanStatus::Overdue {
                    report.overdue_loans += 1;
                }
            }
            start = end;
        }
        report.phases_millis.ledger += ledger_started.elapsed().as_millis() as u64;
        Ok(moved)
    }
}
