//! Pre-flight checks of `producer plan` and `producer enqueue`: everything a run
//! needs that can be checked before anything is sent, each failure naming what is
//! wrong and how to fix it (`--skip-checks` bypasses them).
//!
//! Checked: AWS credentials resolve (when anything is on AWS); the source lists;
//! the store is reachable and writable (a probe object, deleted at once); the
//! repository, if it exists, has a virtual chunk container covering the source;
//! the queues exist, have redrive policies to their dead-letter queues, and
//! visibility timeouts at least as long as the function timeouts (when known).

use std::collections::HashMap;

use aws_sdk_sqs::config::ProvideCredentials;
use aws_sdk_sqs::types::QueueAttributeName;
use floe_fleet::FleetConfig;
use floe_source::{Source, SourceOptions};
use floe_store::{CloudSettings, StoreLocation};
use serde::Serialize;

/// One check and, when it failed, what is wrong and how to fix it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// What is wrong and how to fix it; `None` when the check passed.
    pub problem: Option<String>,
}

impl Check {
    fn passed(name: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            problem: None,
        }
    }

    fn failed(name: impl Into<String>, problem: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            problem: Some(problem.into()),
        }
    }
}

/// What the caller is about to do: `plan` only reads; `enqueue` also writes the
/// store and sends to the work queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// `producer plan`.
    Plan,
    /// `producer enqueue`.
    Enqueue,
}

/// The failed checks as one error message, or `Ok` when all passed.
pub fn into_result(checks: &[Check]) -> anyhow::Result<()> {
    let failed: Vec<String> = checks
        .iter()
        .filter_map(|c| c.problem.as_ref().map(|p| format!("  {}: {p}", c.name)))
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "pre-flight: {} of {} check(s) failed (--skip-checks runs anyway):\n{}",
        failed.len(),
        checks.len(),
        failed.join("\n")
    )
}

/// Runs every check that applies to `config`.
pub async fn run(config: &FleetConfig, intent: Intent, options: &SourceOptions) -> Vec<Check> {
    let mut checks = Vec::new();
    let on_s3 = [&config.source_url, &config.store_url, &config.fragments_url]
        .into_iter()
        .flatten()
        .any(|u| u.starts_with("s3://"));
    let queues = intent == Intent::Enqueue
        && (config.work_queue_url.is_some() || config.results_queue_url.is_some());
    // The AWS chain (profiles, SSO, instance metadata) is resolved only when needed.
    let shared = if on_s3 || queues {
        let shared = floe_fleet::aws::sdk_config().await;
        checks.push(credentials(&shared).await);
        Some(shared)
    } else {
        None
    };
    if let Some(source) = &config.source_url {
        checks.push(source_lists(source, options).await);
    }
    if let Some(store) = &config.store_url {
        checks.push(store_writable(store, options).await);
        // `enqueue` adds a missing container itself (and checks it after).
        if let (Some(source), Intent::Plan) = (&config.source_url, intent) {
            checks.push(container_covers(store, source).await);
        }
    }
    if let (Intent::Enqueue, Some(shared)) = (intent, &shared) {
        let client = aws_sdk_sqs::Client::new(shared);
        for (name, url, dlq, timeout) in [
            (
                "work queue",
                &config.work_queue_url,
                &config.work_dlq_url,
                config.virtualizer_timeout_seconds,
            ),
            (
                "results queue",
                &config.results_queue_url,
                &config.results_dlq_url,
                config.committer_timeout_seconds,
            ),
        ] {
            if let Some(url) = url {
                checks.push(queue(&client, name, url, dlq.as_deref(), timeout).await);
            }
        }
    }
    checks
}

async fn credentials(shared: &aws_config::SdkConfig) -> Check {
    const NAME: &str = "AWS credentials";
    let Some(provider) = shared.credentials_provider() else {
        return Check::failed(NAME, "no credentials provider: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    };
    match provider.provide_credentials().await {
        Ok(_) => Check::passed(NAME),
        Err(e) => Check::failed(
            NAME,
            format!("they do not resolve ({e}); set AWS_PROFILE (and `aws sso login` for SSO profiles), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        ),
    }
}

async fn source_lists(source: &str, options: &SourceOptions) -> Check {
    let name = format!("source {source} lists");
    match floe_source::lists_anything(source, options).await {
        Ok(true) => Check::passed(name),
        Ok(false) => Check::failed(
            name,
            "it lists no object: check source_url (an archive's root, INST/MODEL/EXP/*.nc under it)",
        ),
        Err(e) => Check::failed(
            name,
            format!("it cannot be listed ({e}); check source_url, and that your credentials may list it (s3:ListBucket on the bucket; gs:// sources must be public)"),
        ),
    }
}

async fn store_writable(store: &str, options: &SourceOptions) -> Check {
    let name = format!("store {store} is writable");
    let location = match StoreLocation::parse(store) {
        Ok(l) => l,
        Err(e) => return Check::failed(name, e.to_string()),
    };
    let probe = match &location {
        StoreLocation::Local(path) => {
            // The nearest existing directory must take a new entry.
            let mut dir = path.as_path();
            while !dir.exists() {
                match dir.parent() {
                    Some(parent) => dir = parent,
                    None => break,
                }
            }
            if dir.exists() && !dir.is_dir() {
                return Check::failed(name, format!("{} is not a directory", dir.display()));
            }
            return match tempfile::tempdir_in(dir) {
                Ok(_) => Check::passed(name),
                Err(e) => Check::failed(
                    name,
                    format!(
                        "{} does not take new files ({e}); choose a store directory you can write",
                        dir.display()
                    ),
                ),
            };
        }
        StoreLocation::S3 { bucket, prefix } => format!(
            "s3://{bucket}/{}.floe-preflight-{}",
            if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            std::process::id()
        ),
    };
    let written = async {
        let object = Source::resolve(&probe, options)?;
        object
            .put(bytes::Bytes::from_static(b"floe pre-flight probe"))
            .await?;
        object.delete().await
    };
    match written.await {
        Ok(()) => Check::passed(name),
        Err(e) => Check::failed(
            name,
            format!("a probe object could not be written and deleted ({e}); check store_url, that the bucket exists, and that your credentials may s3:PutObject and s3:DeleteObject under it"),
        ),
    }
}

/// Whether the store's repository (if any) has a container covering `source`.
pub async fn container_covers(store: &str, source: &str) -> Check {
    let prefix = floe_store::location::container_prefix(&floe_source::normalize_url(source));
    let name = format!("the store's virtual chunk containers cover {prefix}");
    let location = match StoreLocation::parse(store) {
        Ok(l) => l,
        Err(e) => return Check::failed(name, e.to_string()),
    };
    match floe_store::uncovered_source(&location, &CloudSettings::from_env(), &prefix).await {
        Ok(None) => Check::passed(name),
        Ok(Some(containers)) => Check::failed(
            name,
            format!(
                "the repository's containers are [{}], so its readers may not read chunks under {prefix}; `producer enqueue` adds the container, or set source_url to the archive this store was built from",
                containers.join(", ")
            ),
        ),
        Err(e) => Check::failed(name, format!("its configuration cannot be read ({e})")),
    }
}

async fn queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    url: &str,
    dlq: Option<&str>,
    function_timeout: Option<u64>,
) -> Check {
    let check = format!("{name} {url}");
    let attributes: HashMap<QueueAttributeName, String> = match client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
    {
        Ok(out) => out.attributes.unwrap_or_default(),
        Err(e) => {
            return Check::failed(
                check,
                format!(
                    "it cannot be read at {} ({}); check the {name} URL (it does not exist, or your credentials may not sqs:GetQueueAttributes); `producer config --stack NAME` prints the deployed ones",
                    floe_fleet::aws::endpoint_of("sqs"),
                    floe_fleet::aws::error_text(&e)
                ),
            )
        }
    };
    let Some(redrive) = attributes.get(&QueueAttributeName::RedrivePolicy) else {
        return Check::failed(
            check,
            "it has no redrive policy, so a message that always fails would be retried forever; give it a dead-letter queue (infra/floe.yaml does)",
        );
    };
    if let Some(dlq) = dlq {
        let dlq_arn = client
            .get_queue_attributes()
            .queue_url(dlq)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .ok()
            .and_then(|o| o.attributes)
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned());
        match dlq_arn {
            None => {
                return Check::failed(
                    check,
                    format!("its dead-letter queue {dlq} cannot be read (does it exist?)"),
                )
            }
            Some(arn) if !redrive.contains(&arn) => {
                return Check::failed(
                    check,
                    format!("its redrive policy ({redrive}) does not send to the configured dead-letter queue {arn}"),
                )
            }
            Some(_) => {}
        }
    }
    if let Some(timeout) = function_timeout {
        let visibility: u64 = attributes
            .get(&QueueAttributeName::VisibilityTimeout)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if visibility < timeout {
            return Check::failed(
                check,
                format!("its visibility timeout ({visibility} s) is shorter than the function timeout ({timeout} s), so a message would be delivered again while it is still being worked on; raise it to at least {timeout} s (infra/floe.yaml uses six times the timeout)"),
            );
        }
    }
    Check::passed(check)
}

/// The checks, one line each.
pub fn render(checks: &[Check]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for c in checks {
        let _ = match &c.problem {
            None => writeln!(out, "  ok    {}", c.name),
            Some(p) => writeln!(out, "  FAIL  {}: {p}", c.name),
        };
    }
    out
}
