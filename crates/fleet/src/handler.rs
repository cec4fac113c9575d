//! The contract between a queue (SQS through the worker, or Lambda's event
//! source mapping) and the code that processes its messages.

use std::future::Future;

/// One received message, whatever delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The SQS message id; outcomes are reported against it.
    pub id: String,
    /// The body (JSON).
    pub body: String,
    /// How many times SQS has delivered it, this time included.
    pub receive_count: u32,
}

/// A message that was not processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFailure {
    /// Its id.
    pub id: String,
    /// Why, naming the file or fragment at fault.
    pub reason: String,
    /// The input itself is bad: retrying cannot help, so the worker makes it
    /// visible again at once and it reaches the dead-letter queue after the
    /// redrive policy's receive count instead of after several timeouts.
    pub permanent: bool,
}

/// What happened to a batch: every message not listed as failed succeeded
/// and may be deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// The failed messages.
    pub failures: Vec<MessageFailure>,
}

impl BatchOutcome {
    /// Every message of the batch failed for the same reason (the store or the
    /// next queue was unreachable).
    pub fn all_failed(messages: &[Message], reason: &str, permanent: bool) -> Self {
        BatchOutcome {
            failures: messages
                .iter()
                .map(|m| MessageFailure {
                    id: m.id.clone(),
                    reason: reason.to_string(),
                    permanent,
                })
                .collect(),
        }
    }

    /// Whether a message succeeded.
    pub fn succeeded(&self, id: &str) -> bool {
        !self.failures.iter().any(|f| f.id == id)
    }
}

/// Processes a batch of messages. Must be idempotent: SQS delivers at least
/// once, and a failed message comes back.
pub trait BatchHandler: Send + Sync + 'static {
    /// Handles the batch; never fails as a whole (a failure of everything is
    /// [`BatchOutcome::all_failed`]).
    fn handle(&self, messages: Vec<Message>) -> impl Future<Output = BatchOutcome> + Send;
}
