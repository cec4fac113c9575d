//! The Lambda entry point: Lambda's SQS event source mapping delivers an
//! `SqsEvent`; the handler's failures become a `SqsBatchResponse` (requires
//! `ReportBatchItemFailures` on the mapping), so only failed messages return
//! to the queue.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};

use crate::handler::{BatchHandler, Message};

/// Serves invocations until the runtime stops the process.
pub async fn run<H: BatchHandler>(handler: Arc<H>) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let handler = handler.clone();
        async move { Ok::<_, lambda_runtime::Error>(respond(handler.as_ref(), event.payload).await) }
    }))
    .await
}

/// One invocation: records to messages, failures to batch item failures.
pub async fn respond<H: BatchHandler>(handler: &H, event: SqsEvent) -> SqsBatchResponse {
    let messages: Vec<Message> = event
        .records
        .into_iter()
        .map(|r| Message {
            receive_count: r
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            id: r.message_id.unwrap_or_default(),
            body: r.body.unwrap_or_default(),
        })
        .collect();
    tracing::info!(messages = messages.len(), "invocation");
    let outcome = handler.handle(messages).await;
    let mut response = SqsBatchResponse::default();
    for f in outcome.failures {
        tracing::warn!(message = %f.id, permanent = f.permanent, reason = %f.reason, "message failed");
        response.add_failure(f.id);
    }
    response
}
