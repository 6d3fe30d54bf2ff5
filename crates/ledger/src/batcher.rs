//! Group commit for single transfers.
//!
//! Every write to the journal is serialised (one SQLite writer; the journal-head lock on
//! PostgreSQL), so a commit per request would cap throughput at one fsync per transfer. The
//! batcher collects the requests that arrive while the previous commit is in flight and commits
//! them together; each caller still gets its own outcome only after the commit is durable.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::engine::MAX_BATCH;
use crate::types::{TransferOutcome, TransferRequest};
use crate::{Clock, LedgerError, LedgerStore};

type Reply = oneshot::Sender<Result<TransferOutcome, LedgerError>>;

#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::Sender<(TransferRequest, Reply)>,
}

impl Batcher {
    pub(crate) fn start(store: Arc<dyn LedgerStore>, clock: Arc<dyn Clock>) -> Self {
        let (tx, mut rx) = mpsc::channel::<(TransferRequest, Reply)>(MAX_BATCH * 2);
        tokio::spawn(async move {
            let mut pending: Vec<(TransferRequest, Reply)> = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut pending, MAX_BATCH).await > 0 {
                let requests: Vec<TransferRequest> = pending
                    .iter()
                    .map(|(r, _)| {
                        // Independent callers must never be chained together.
                        let mut r = r.clone();
                        r.linked = false;
                        r
                    })
                    .collect();
                let result = store.write_batch(&requests, clock.now_micros(), false).await;
                match result {
                    Ok(outcomes) => {
                        for ((_, reply), outcome) in pending.drain(..).zip(outcomes) {
                            let _ = reply.send(Ok(outcome));
                        }
                    }
                    Err(e) => {
                        let message = e.to_string();
                        tracing::error!(error = %message, "batch commit failed");
                        for (_, reply) in pending.drain(..) {
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
        self.tx.send((request, reply)).await.map_err(|_| LedgerError::ShuttingDown)?;
        wait.await.map_err(|_| LedgerError::ShuttingDown)?
    }
}
