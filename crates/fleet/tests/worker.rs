//! The worker loop against a real SQS API (LocalStack, through `AWS_ENDPOINT_URL`
//! as `tests/run.sh` sets it): a batch that takes several visibility timeouts to
//! handle is kept invisible by the heartbeat, so it is handled once and deleted,
//! and a second consumer polling all the while never sees it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use floe_fleet::sqs::{client, Queue};
use floe_fleet::worker::{run, WorkerSettings};
use floe_fleet::{BatchHandler, BatchOutcome, Message};

/// Takes `work` per batch and counts the messages it saw.
struct SlowHandler {
    work: Duration,
    seen: AtomicUsize,
}

impl BatchHandler for SlowHandler {
    async fn handle(&self, messages: Vec<Message>) -> BatchOutcome {
        self.seen.fetch_add(messages.len(), Ordering::SeqCst);
        tokio::time::sleep(self.work).await;
        BatchOutcome::default()
    }
}

fn localstack() -> bool {
    std::env::var("AWS_ENDPOINT_URL").is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_keeps_a_long_batch_invisible_until_it_is_deleted() {
    assert!(
        localstack(),
        "needs LocalStack: bash localstack/start.sh && source localstack/env.sh (tests/run.sh does both)"
    );
    let sqs = client().await;
    let name = format!("floe-heartbeat-{}", std::process::id());
    let created = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("create the test queue");
    let url = created.queue_url().expect("queue url").to_string();
    let queue = Queue::new(sqs.clone(), url.clone());
    queue
        .send_all(&["one".to_string(), "two".to_string()], |_| {})
        .await
        .expect("send two messages");

    // Visibility 3 s, work 10 s: without extensions both messages would reappear
    // three times while the first consumer still works on them.
    let settings = WorkerSettings {
        batch_size: Some(10),
        batching_window: 1,
        visibility_timeout: 3,
        poll_wait: 1,
        exit_when_idle: Some(2),
        ..WorkerSettings::default()
    };
    let slow = Arc::new(SlowHandler {
        work: Duration::from_secs(10),
        seen: AtomicUsize::new(0),
    });
    let rival = Arc::new(SlowHandler {
        work: Duration::ZERO,
        seen: AtomicUsize::new(0),
    });
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let first = tokio::spawn(run(
        queue.clone(),
        slow.clone(),
        settings.clone(),
        shutdown.clone(),
    ));
    // The rival starts once the first worker holds the batch, and polls until the
    // queue is empty with nothing in flight.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = tokio::spawn(run(queue.clone(), rival.clone(), settings, shutdown));
    let first = first
        .await
        .expect("first worker")
        .expect("first worker ran");
    let second = second.await.expect("rival worker").expect("rival ran");

    assert_eq!(slow.seen.load(Ordering::SeqCst), 2, "{first:?}");
    assert_eq!(first.succeeded, 2, "{first:?}");
    assert_eq!(
        rival.seen.load(Ordering::SeqCst),
        0,
        "the rival received a message the first worker still held: {second:?}"
    );
    let depth = queue.depth().await.expect("queue depth");
    assert_eq!(depth.total(), 0, "{depth:?}");
    let _ = sqs.delete_queue().queue_url(url).send().await;
}
