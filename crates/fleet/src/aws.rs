//! The AWS SDK configuration every floe client shares: the standard chain (region,
//! credentials, `AWS_ENDPOINT_URL`) with floe's retry policy
//! ([`floe_source::retry`]: `FLOE_RETRY_ATTEMPTS`, `FLOE_RETRY_BUDGET`).
//!
//! Retries run in the SDK's adaptive mode: exponential backoff with jitter between
//! tries, and on throttling answers (S3's 503 SlowDown, SQS's `RequestThrottled`) a
//! client-side rate limiter that slows every later request of the client too. The
//! operation timeout is the budget plus the 20 s of a long poll, so a receive that
//! waits for messages is not cut short, and a call to an endpoint that is down fails
//! within that time, naming it.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use floe_source::retry::{RetryPolicy, INITIAL_BACKOFF, MAX_BACKOFF};

/// The longest SQS long poll (`WaitTimeSeconds` of 20).
pub const LONG_POLL: Duration = Duration::from_secs(20);

/// Where the SDK sends a service's requests, for messages: `AWS_ENDPOINT_URL_<SERVICE>`,
/// else `AWS_ENDPOINT_URL` (as the SDK's environment chain resolves them), else the
/// region's AWS endpoint.
pub fn endpoint_of(service: &str) -> String {
    let var = |name: String| std::env::var(name).ok().filter(|v| !v.is_empty());
    var(format!("AWS_ENDPOINT_URL_{}", service.to_ascii_uppercase()))
        .or_else(|| var("AWS_ENDPOINT_URL".to_string()))
        .unwrap_or_else(|| format!("the region's AWS {service} endpoint"))
}

/// An SDK error and its causes, each once (the SDK's own `DisplayErrorContext` adds
/// the whole error's debug form, which repeats every cause).
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    floe_runtime::error_chain(e)
}

/// The SDK retry settings of a policy.
pub fn retry_config(policy: &RetryPolicy) -> RetryConfig {
    RetryConfig::adaptive()
        .with_max_attempts(policy.attempts)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// The shared SDK configuration, with the environment's retry policy.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let policy = RetryPolicy::from_env_or_default();
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(retry_config(&policy))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(policy.budget + LONG_POLL)
                .build(),
        );
    // Boxed: the loader's future is deeply nested, and inlined into every caller's
    // state machine it pushed their layouts past the compiler's recursion limit.
    Box::pin(loader.load()).await
}
