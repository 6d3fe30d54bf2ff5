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
                // Move the requests out (no copies); independent callers are never chained.
                let (requests, replies): (Vec<TransferRequest>, Vec<Reply>) = pending
                    .drain(..)
                    .map(|(mut r, reply)| {
                        r.linked = false;
                        (r, reply)
                    })
                    .unzip();
                let result = store.write_batch(requests, clock.now_micros(), false).await;
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
        self.tx.send((request, reply)).await.map_err(|_| LedgerError::ShuttingDown)?;
        wait.await.map_err(|_| LedgerError::ShuttingDown)?
    }
}
