//! Group commit for single transfers.
//!
//! Every write to the journal is serialised (one SQLite writer; the journal-head lock on
//! PostgreSQL), so a commit per request would cap throughput at one fsync per transfer. The
//! batcher collects the requests that arrive while the previous commit is in flight and commits
//! them together; each caller still gets its own outcome only after the commit is durable.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::engine::MAX_BATCH;
use storage::Statement;

use crate::types::{TransferOutcome, TransferRequest};
use crate::AlongWithBatch;
use crate::{Clock, LedgerError, LedgerStore};

type Reply = oneshot::Sender<Result<TransferOutcome, LedgerError>>;
/// A request, the audit entry of the caller's scope (captured before it crosses to the batcher's
/// task) and where to send the outcome.
type Pending = (TransferRequest, Option<Statement>, Reply);

#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::Sender<Pending>,
}

impl Batcher {
    pub(crate) fn start(store: Arc<dyn LedgerStore>, clock: Arc<dyn Clock>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Pending>(MAX_BATCH * 2);
        tokio::spawn(async move {
            let mut pending: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut pending, MAX_BATCH).await > 0 {
                // Move the requests out (no copies); independent callers are never chained.
                let mut requests = Vec::with_capacity(pending.len());
                let mut replies = Vec::with_capacity(pending.len());
                let mut entries = Vec::new();
                for (mut request, entry, reply) in pending.drain(..) {
                    request.linked = false;
                    requests.push(request);
                    replies.push(reply);
                    entries.extend(entry);
                }
                // Each caller's audit entry commits in the batch's transaction.
                let along = (!entries.is_empty())
                    .then(|| -> AlongWithBatch { Box::new(move |_| storage::audit::merge_entries(entries)) });
                let result = store.write_batch_with(requests, clock.now_micros(), false, along).await;
                match result {
                    Ok(outcomes) => {
                        for (reply, outcome) in replies.into_iter().zip(outcomes) {
                            let _ = reply.send(Ok(outcome));
                        }
                    }
                    Err(e) => {
                        let message = e.to_string();
                        tracing::error!(error = %message, "batch commit failed");
                        for reply in replies {
                            let _ = reply.send(Err(LedgerError::Unavailable(message.clone())));
                        }
                    }
                }
            }
        });
        Batcher { tx }
    }

    pub(crate) async fn submit(&self, request: TransferRequest) -> Result<TransferOutcome, LedgerError> {
        let (reply, wait) = oneshot::channel();
        let entry = storage::audit::next_entry();
        self.tx.send((request, entry, reply)).await.map_err(|_| LedgerError::ShuttingDown)?;
        wait.await.map_err(|_| LedgerError::ShuttingDown)?
    }
}
