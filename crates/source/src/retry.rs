//! One retry policy for every remote call floe makes: source reads, fragments and
//! failure records and the store (object_store; icechunk's object_store S3 storage) and the queues
//! (the AWS SDK). Each client has its own retry machinery; this module only gives
//! them the same two knobs, so a user tunes one thing and every command's worst case
//! is known.
//!
//! - `FLOE_RETRY_ATTEMPTS` (default 8): tries per request, the first included.
//! - `FLOE_RETRY_BUDGET` (default 60s, humantime: `90s`, `2m`): the longest one
//!   request may take, its retries and backoff included. A command that cannot reach
//!   an endpoint fails after about this long, naming the endpoint and the cause.
//!
//! Backoff is exponential with jitter, from 200 ms up to 5 s between tries. The AWS
//! SDK clients run in its adaptive mode: on throttling answers (503 SlowDown,
//! `RequestThrottled`) they also slow their own request rate, not just the request
//! that was refused.

use std::time::Duration;

/// How often and for how long a request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries per request, the first included (at least 1).
    pub attempts: u32,
    /// The longest one request may take, retries included.
    pub budget: Duration,
}

/// The backoff before the first retry.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// The longest backoff between two tries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            budget: Duration::from_secs(60),
        }
    }
}

/// A retry setting that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{variable}={value:?}: {reason}")]
pub struct RetrySettingError {
    variable: &'static str,
    value: String,
    reason: String,
}

impl RetryPolicy {
    /// From `FLOE_RETRY_ATTEMPTS` and `FLOE_RETRY_BUDGET`, defaults where unset.
    pub fn from_env() -> Result<Self, RetrySettingError> {
        Self::from_values(
            std::env::var("FLOE_RETRY_ATTEMPTS").ok().as_deref(),
            std::env::var("FLOE_RETRY_BUDGET").ok().as_deref(),
        )
    }

    /// From the two settings' texts (`None`: the default).
    pub fn from_values(
        attempts: Option<&str>,
        budget: Option<&str>,
    ) -> Result<Self, RetrySettingError> {
        let mut policy = RetryPolicy::default();
        if let Some(text) = attempts {
            policy.attempts = match text.trim().parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(RetrySettingError {
                        variable: "FLOE_RETRY_ATTEMPTS",
                        value: text.into(),
                        reason: "expected a whole number of tries, at least 1".into(),
                    })
                }
            };
        }
        if let Some(text) = budget {
            policy.budget =
                humantime::parse_duration(text.trim()).map_err(|e| RetrySettingError {
                    variable: "FLOE_RETRY_BUDGET",
                    value: text.into(),
                    reason: format!("{e}; expected a duration such as 60s or 2m"),
                })?;
        }
        Ok(policy)
    }

    /// The environment's policy, or the default with a warning when it does not parse
    /// (for library code that has no error path of its own; the binaries check it at
    /// start-up through [`RetryPolicy::from_env`]).
    pub fn from_env_or_default() -> Self {
        Self::from_env().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "retry settings ignored");
            RetryPolicy::default()
        })
    }

    /// object_store's form: retries after the first try, within the budget.
    pub fn object_store(&self) -> object_store::RetryConfig {
        object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: INITIAL_BACKOFF,
                max_backoff: MAX_BACKOFF,
                base: 2.0,
            },
            max_retries: self.attempts.saturating_sub(1) as usize,
            retry_timeout: self.budget,
        }
    }

    /// The longest the backoff alone can add to one request.
    pub fn worst_backoff(&self) -> Duration {
        let mut total = Duration::ZERO;
        let mut next = INITIAL_BACKOFF;
        for _ in 1..self.attempts {
            total += next;
            next = (next * 2).min(MAX_BACKOFF);
        }
        total.min(self.budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(
            RetryPolicy::from_values(None, None).expect("defaults"),
            RetryPolicy::default()
        );
        let p = RetryPolicy::from_values(Some("3"), Some("90s")).expect("values");
        assert_eq!((p.attempts, p.budget), (3, Duration::from_secs(90)));
        assert_eq!(p.object_store().max_retries, 2);
        assert_eq!(p.worst_backoff(), Duration::from_millis(200 + 400));
    }

    #[test]
    fn bad_values_are_named() {
        let e = RetryPolicy::from_values(Some("0"), None).expect_err("zero tries");
        assert!(e.to_string().contains("FLOE_RETRY_ATTEMPTS"), "{e}");
        let e = RetryPolicy::from_values(None, Some("soon")).expect_err("not a duration");
        assert!(e.to_string().contains("FLOE_RETRY_BUDGET"), "{e}");
    }

    #[test]
    fn backoff_is_capped_and_bounded_by_the_budget() {
        let p = RetryPolicy {
            attempts: 30,
            budget: Duration::from_secs(20),
        };
        assert_eq!(p.worst_backoff(), Duration::from_secs(20));
        let p = RetryPolicy {
            attempts: 8,
            budget: Duration::from_secs(600),
        };
        // 0.2 + 0.4 + 0.8 + 1.6 + 3.2 + 5 + 5
        assert_eq!(p.worst_backoff(), Duration::from_millis(16_200));
    }
}
