//! The SQS operations floe uses, on the AWS SDK (`aws-sdk-sqs`). Endpoint,
//! region and credentials come from the SDK's standard chain, so
//! `AWS_ENDPOINT_URL` points everything at LocalStack.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use backon::{ExponentialBuilder, Retryable};

use crate::handler::Message;

/// SQS's limit on entries per batch call.
pub const MAX_BATCH_ENTRIES: usize = 10;

/// Errors of queue access, naming the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// An API call failed.
    #[error("{queue}: {operation} at {endpoint}: {reason}")]
    Call {
        /// Queue URL.
        queue: String,
        /// The operation.
        operation: &'static str,
        /// Where the request went (`AWS_ENDPOINT_URL`, or the region's endpoint).
        endpoint: String,
        /// The SDK's error with its context.
        reason: String,
    },
    /// Some messages could not be sent even after retries.
    #[error("{queue}: {count} message(s) not sent: {reason}")]
    NotSent {
        /// Queue URL.
        queue: String,
        /// How many.
        count: usize,
        /// The last error.
        reason: String,
    },
}

/// A received message with what deleting or extending it needs.
#[derive(Debug, Clone)]
pub struct Received {
    /// The message.
    pub message: Message,
    /// The receipt handle of this delivery.
    pub receipt: String,
}

/// Depth of a queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueDepth {
    /// Messages waiting.
    pub visible: u64,
    /// Messages received and not yet deleted or returned.
    pub in_flight: u64,
    /// Messages delayed.
    pub delayed: u64,
}

impl QueueDepth {
    /// Waiting plus in flight plus delayed.
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

/// One queue.
#[derive(Debug, Clone)]
pub struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
}

/// The SQS client from the standard chain.
pub async fn client() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&crate::aws::sdk_config().await)
}

fn reason<E>(e: aws_sdk_sqs::error::SdkError<E>) -> String
where
    E: std::error::Error + 'static,
{
    crate::aws::error_text(&e)
}

impl Queue {
    /// A queue by URL on a client.
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Queue {
            client,
            url: url.into(),
        }
    }

    /// The queue URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn error(&self, operation: &'static str, reason: String) -> QueueError {
        QueueError::Call {
            queue: self.url.clone(),
            operation,
            endpoint: crate::aws::endpoint_of("sqs"),
            reason,
        }
    }

    /// One ReceiveMessage call (long poll of `wait`).
    pub async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, MAX_BATCH_ENTRIES) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .visibility_timeout(visibility.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| self.error("ReceiveMessage", reason(e)))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                Some(Received {
                    message: Message {
                        id: m.message_id()?.to_string(),
                        body: m.body().unwrap_or_default().to_string(),
                        receive_count,
                    },
                    receipt: m.receipt_handle()?.to_string(),
                })
            })
            .collect())
    }

    /// Deletes messages (batches of ten). Returns the ids that could not be deleted.
    pub async fn delete(&self, messages: &[&Received]) -> Result<Vec<String>, QueueError> {
        let mut not_deleted = Vec::new();
        for chunk in messages.chunks(MAX_BATCH_ENTRIES) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&r.receipt)
                        .build()
                        .map_err(|e| self.error("DeleteMessageBatch", e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.error("DeleteMessageBatch", reason(e)))?;
            for failed in out.failed() {
                if let Some(r) = failed.id().parse::<usize>().ok().and_then(|i| chunk.get(i)) {
                    not_deleted.push(r.message.id.clone());
                }
            }
        }
        Ok(not_deleted)
    }

    /// Sets the visibility timeout of received messages (extend long work, or
    /// 0 to hand a message back at once). Returns the entries the service refused,
    /// as `id (code: message)`: a refused extension means the message may already
    /// be visible to other consumers.
    pub async fn set_visibility(
        &self,
        messages: &[&Received],
        timeout: Duration,
    ) -> Result<Vec<String>, QueueError> {
        let mut not_changed = Vec::new();
        for chunk in messages.chunks(MAX_BATCH_ENTRIES) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&r.receipt)
                        .visibility_timeout(timeout.as_secs() as i32)
                        .build()
                        .map_err(|e| self.error("ChangeMessageVisibilityBatch", e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.error("ChangeMessageVisibilityBatch", reason(e)))?;
            for failed in out.failed() {
                if let Some(r) = failed.id().parse::<usize>().ok().and_then(|i| chunk.get(i)) {
                    not_changed.push(format!(
                        "{} ({}: {})",
                        r.message.id,
                        failed.code(),
                        failed.message().unwrap_or("no message")
                    ));
                }
            }
        }
        Ok(not_changed)
    }

    /// Sends bodies with SendMessageBatch, ten per call; entries the service
    /// rejects (throttling, internal errors) are re-sent with a jittered
    /// backoff. `sent` is called with the number sent after each call.
    pub async fn send_all(
        &self,
        bodies: &[String],
        mut sent: impl FnMut(usize),
    ) -> Result<(), QueueError> {
        for chunk in batches(bodies, MAX_BATCH_ENTRIES, MAX_BATCH_BYTES) {
            let mut pending: Vec<usize> = (0..chunk.len()).collect();
            let mut last_reason = String::new();
            let backoff = ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(8)
                .with_jitter();
            let mut delays = backon::BackoffBuilder::build(backoff);
            loop {
                let entries = pending
                    .iter()
                    .map(|&i| {
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(&chunk[i])
                            .build()
                            .map_err(|e| self.error("SendMessageBatch", e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                match self
                    .client
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                {
                    Ok(out) => {
                        sent(out.successful().len());
                        let mut retry = Vec::new();
                        for f in out.failed() {
                            let why =
                                format!("{}: {}", f.code(), f.message().unwrap_or("no message"));
                            if f.sender_fault() {
                                // Our request is wrong (too large, bad characters): retrying cannot help.
                                return Err(QueueError::NotSent {
                                    queue: self.url.clone(),
                                    count: out.failed().len(),
                                    reason: why,
                                });
                            }
                            last_reason = why;
                            if let Ok(i) = f.id().parse::<usize>() {
                                retry.push(i);
                            }
                        }
                        pending = retry;
                    }
                    Err(e) => last_reason = reason(e),
                }
                if pending.is_empty() {
                    break;
                }
                match delays.next() {
                    Some(delay) => {
                        tracing::warn!(queue = %self.url, pending = pending.len(), reason = %last_reason, ?delay, "re-sending");
                        tokio::time::sleep(delay).await;
                    }
                    None => {
                        return Err(QueueError::NotSent {
                            queue: self.url.clone(),
                            count: pending.len(),
                            reason: last_reason,
                        })
                    }
                }
            }
        }
        Ok(())
    }

    /// Messages waiting, in flight and delayed.
    pub async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let attrs = self.attributes().await?;
        let get = |k: QueueAttributeName| {
            attrs
                .get(&k)
                .and_then(|v| v.parse().ok())
                .unwrap_or_default()
        };
        Ok(QueueDepth {
            visible: get(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }

    /// All attributes of the queue.
    pub async fn attributes(&self) -> Result<HashMap<QueueAttributeName, String>, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .map_err(|e| self.error("GetQueueAttributes", reason(e)))?;
        Ok(out.attributes().cloned().unwrap_or_default())
    }

    /// The queue's ARN.
    pub async fn arn(&self) -> Result<String, QueueError> {
        self.attributes()
            .await?
            .remove(&QueueAttributeName::QueueArn)
            .ok_or_else(|| self.error("GetQueueAttributes", "no QueueArn attribute".into()))
    }

    /// The client (for calls that are not about one queue).
    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }
}

/// Retries a queue call a few times (network blips), used for calls whose
/// failure would otherwise drop a finished batch's acknowledgement.
pub async fn with_retries<T, F, Fut>(call: F) -> Result<T, QueueError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, QueueError>>,
{
    call.retry(
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_times(5)
            .with_jitter(),
    )
    .notify(|e, delay| tracing::warn!(error = %e, ?delay, "queue call failed, retrying"))
    .await
}

/// The bytes one `SendMessageBatch` may carry in all: 256 KiB, the limit of
/// SQS before it took 1 MiB (and of some emulators still). Shard descriptors stay
/// under 200 KiB each, so a batch of them holds one.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Consecutive runs of `bodies`, each at most `entries` long and `bytes` in
/// total (a body larger than `bytes` alone goes in a run of its own, for the
/// service to refuse by name).
pub fn batches(bodies: &[String], entries: usize, bytes: usize) -> Vec<&[String]> {
    let mut runs = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, body) in bodies.iter().enumerate() {
        if i > start && (i - start == entries || size + body.len() > bytes) {
            runs.push(&bodies[start..i]);
            (start, size) = (i, 0);
        }
        size += body.len();
    }
    if start < bodies.len() {
        runs.push(&bodies[start..]);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_ten_entries_and_stay_under_the_byte_limit() {
        let small: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        let runs = batches(&small, MAX_BATCH_ENTRIES, MAX_BATCH_BYTES);
        assert_eq!(
            runs.iter().map(|r| r.len()).collect::<Vec<_>>(),
            [10, 10, 5]
        );
        let shard = "x".repeat(200 * 1024);
        let large = vec![shard.clone(), shard.clone(), "y".into(), shard];
        let runs = batches(&large, MAX_BATCH_ENTRIES, MAX_BATCH_BYTES);
        assert_eq!(runs.iter().map(|r| r.len()).collect::<Vec<_>>(), [1, 2, 1]);
        assert!(runs
            .iter()
            .all(|r| r.iter().map(String::len).sum::<usize>() <= MAX_BATCH_BYTES));
        assert_eq!(runs.concat(), large);
        assert!(batches(&[], 10, 10).is_empty());
    }
}
