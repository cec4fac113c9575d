//! The fleet's configuration, written once by the user and read by every
//! command.
//!
//! Sources, weakest first: the config file (`--config`, `FLOE_CONFIG`, or
//! `./floe.toml` when it exists), the outputs of the deployed CloudFormation
//! stack (`--stack`, `FLOE_STACK`), then environment variables and flags
//! (`FLOE_WORK_QUEUE_URL`, `--work-queue-url`, …). AWS access itself
//! (region, credentials, `AWS_ENDPOINT_URL` for LocalStack) follows the AWS
//! SDK's standard chain.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use floe_source::{GcsSettings, SourceOptions};
use serde::{Deserialize, Serialize};

/// Errors of configuration loading.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The stack cannot be described.
    #[error("stack {stack}: {reason}")]
    Stack {
        /// The stack name.
        stack: String,
        /// Why.
        reason: String,
    },
    /// A setting that does not parse.
    #[error("{reason}")]
    Setting {
        /// What is wrong with it.
        reason: String,
    },
    /// A setting a command needs is not set anywhere.
    #[error("no {what}: set `{key}` in floe.toml, --{flag}, {env}, or deploy the stack and pass --stack")]
    Missing {
        /// Human name.
        what: &'static str,
        /// Key in the file.
        key: &'static str,
        /// Flag name.
        flag: &'static str,
        /// Environment variable.
        env: &'static str,
    },
}

/// Everything the fleet needs to know. Every field is optional here; each
/// command asks for the ones it needs with a `require_*` method.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    /// The archive: `s3://bucket/prefix`, `gs://ismip6/…`, or a directory.
    pub source_url: Option<String>,
    /// The Icechunk repository: `s3://bucket/prefix` or a directory.
    pub store_url: Option<String>,
    /// Where fragments, failure reasons and the enqueued plan go: `s3://bucket/prefix`.
    pub fragments_url: Option<String>,
    /// Producer → virtualizer queue.
    pub work_queue_url: Option<String>,
    /// Its dead-letter queue.
    pub work_dlq_url: Option<String>,
    /// Virtualizer → committer queue.
    pub results_queue_url: Option<String>,
    /// Its dead-letter queue.
    pub results_dlq_url: Option<String>,
    /// Object notifications (S3 straight, or through SNS) → `producer watch`.
    pub events_queue_url: Option<String>,
    /// Its dead-letter queue: notifications that cannot be read, with the reason.
    pub events_dlq_url: Option<String>,
    /// Only this ice sheet (`AIS` or `GIS`): one store holds one ice sheet.
    pub ice_sheet: Option<String>,
    /// The virtualizer function's timeout, seconds (stack output `VirtualizerTimeout`):
    /// pre-flight checks that the work queue's visibility timeout is at least this.
    pub virtualizer_timeout_seconds: Option<u64>,
    /// The committer function's timeout, seconds (stack output `CommitterTimeout`).
    pub committer_timeout_seconds: Option<u64>,
    /// Where `gs://` requests go (an emulator: `http://127.0.0.1:4443`); default:
    /// `STORAGE_EMULATOR_HOST`, else storage.googleapis.com. The store's `gs://`
    /// container carries it, so icechunk reads chunks from the same place.
    pub gcs_endpoint: Option<String>,
    /// `gs://` credentials: `anonymous` (default), `application-default`, or a key
    /// file's path (default: `GOOGLE_APPLICATION_CREDENTIALS` when set).
    pub gcs_credentials: Option<String>,
}

/// Access to one optional setting.
pub type Field = fn(&mut FleetConfig) -> &mut Option<String>;

/// The stack output that carries each setting.
pub const STACK_OUTPUTS: [(&str, Field); 11] = [
    ("SourceUrl", |c| &mut c.source_url),
    ("StoreUrl", |c| &mut c.store_url),
    ("FragmentsUrl", |c| &mut c.fragments_url),
    ("WorkQueueUrl", |c| &mut c.work_queue_url),
    ("WorkDlqUrl", |c| &mut c.work_dlq_url),
    ("ResultsQueueUrl", |c| &mut c.results_queue_url),
    ("ResultsDlqUrl", |c| &mut c.results_dlq_url),
    ("EventsQueueUrl", |c| &mut c.events_queue_url),
    ("EventsDlqUrl", |c| &mut c.events_dlq_url),
    ("GcsEndpoint", |c| &mut c.gcs_endpoint),
    ("GcsCredentials", |c| &mut c.gcs_credentials),
];

macro_rules! require {
    ($name:ident, $field:ident, $what:literal, $flag:literal, $env:literal) => {
        #[doc = concat!("The ", $what, ", or an error saying where to set it.")]
        pub fn $name(&self) -> Result<&str, ConfigError> {
            self.$field.as_deref().ok_or(ConfigError::Missing {
                what: $what,
                key: stringify!($field),
                flag: $flag,
                env: $env,
            })
        }
    };
}

impl FleetConfig {
    require!(
        require_source,
        source_url,
        "source archive",
        "source",
        "FLOE_SOURCE_URL"
    );
    require!(require_store, store_url, "store", "store", "FLOE_STORE_URL");
    require!(
        require_fragments,
        fragments_url,
        "fragments prefix",
        "fragments",
        "FLOE_FRAGMENTS_URL"
    );
    require!(
        require_work_queue,
        work_queue_url,
        "work queue URL",
        "work-queue-url",
        "FLOE_WORK_QUEUE_URL"
    );
    require!(
        require_work_dlq,
        work_dlq_url,
        "work dead-letter queue URL",
        "work-dlq-url",
        "FLOE_WORK_DLQ_URL"
    );
    require!(
        require_results_queue,
        results_queue_url,
        "results queue URL",
        "results-queue-url",
        "FLOE_RESULTS_QUEUE_URL"
    );
    require!(
        require_results_dlq,
        results_dlq_url,
        "results dead-letter queue URL",
        "results-dlq-url",
        "FLOE_RESULTS_DLQ_URL"
    );
    require!(
        require_events_queue,
        events_queue_url,
        "events queue URL",
        "events-queue-url",
        "FLOE_EVENTS_QUEUE_URL"
    );
    require!(
        require_events_dlq,
        events_dlq_url,
        "events dead-letter queue URL",
        "events-dlq-url",
        "FLOE_EVENTS_DLQ_URL"
    );

    /// Parses a TOML document.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text, path)
    }

    /// The settings carried by stack outputs (unknown outputs are ignored).
    pub fn from_outputs(outputs: &BTreeMap<String, String>) -> Self {
        let mut config = FleetConfig::default();
        for (key, field) in STACK_OUTPUTS {
            if let Some(v) = outputs.get(key) {
                *field(&mut config) = Some(v.clone());
            }
        }
        config.virtualizer_timeout_seconds = outputs
            .get("VirtualizerTimeout")
            .and_then(|v| v.parse().ok());
        config.committer_timeout_seconds =
            outputs.get("CommitterTimeout").and_then(|v| v.parse().ok());
        config
    }

    /// `other`'s settings where it has them, ours elsewhere.
    pub fn overridden_by(mut self, other: FleetConfig) -> Self {
        let mut other = other;
        for (_, field) in STACK_OUTPUTS {
            if let Some(v) = field(&mut other).take() {
                *field(&mut self) = Some(v);
            }
        }
        if other.ice_sheet.is_some() {
            self.ice_sheet = other.ice_sheet;
        }
        self.virtualizer_timeout_seconds = other
            .virtualizer_timeout_seconds
            .or(self.virtualizer_timeout_seconds);
        self.committer_timeout_seconds = other
            .committer_timeout_seconds
            .or(self.committer_timeout_seconds);
        self
    }

    /// The source options of the environment ([`SourceOptions::from_env`]) with this
    /// configuration's GCS settings put over them.
    pub fn source_options(&self) -> Result<SourceOptions, ConfigError> {
        let mut options = SourceOptions::from_env();
        options.gcs = self.gcs_settings()?;
        Ok(options)
    }

    /// The GCS settings: the environment's, with this configuration's over them.
    pub fn gcs_settings(&self) -> Result<GcsSettings, ConfigError> {
        GcsSettings::from_env()
            .overridden(
                self.gcs_endpoint.as_deref(),
                self.gcs_credentials.as_deref(),
            )
            .map_err(|reason| ConfigError::Setting { reason })
    }

    /// The TOML form (what `producer config` prints).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

/// Reads the outputs of a CloudFormation stack (SDK chain: region,
/// credentials, `AWS_ENDPOINT_URL`).
pub async fn stack_outputs(stack: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let shared = crate::aws::sdk_config().await;
    let client = aws_sdk_cloudformation::Client::new(&shared);
    let out = client
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| ConfigError::Stack {
            stack: stack.to_string(),
            reason: crate::aws::error_text(&e),
        })?;
    let described = out.stacks().first().ok_or_else(|| ConfigError::Stack {
        stack: stack.to_string(),
        reason: "not found".into(),
    })?;
    Ok(described
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect())
}

/// The configuration flags every fleet command takes (each also an environment variable).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FleetArgs {
    /// Configuration file (TOML; keys as the flags below with `_`). Default: ./floe.toml if present.
    #[arg(long, env = "FLOE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Deployed CloudFormation stack whose outputs give queue URLs, buckets and prefixes.
    #[arg(long, env = "FLOE_STACK", global = true)]
    pub stack: Option<String>,
    /// The archive: s3://bucket/prefix, gs://bucket/prefix, or a directory.
    #[arg(long = "source", env = "FLOE_SOURCE_URL", global = true)]
    pub source_url: Option<String>,
    /// The Icechunk repository: s3://bucket/prefix or a directory.
    #[arg(long = "store", env = "FLOE_STORE_URL", global = true)]
    pub store_url: Option<String>,
    /// Prefix for fragments, failure reasons and the plan: s3://bucket/prefix or a directory.
    #[arg(long = "fragments", env = "FLOE_FRAGMENTS_URL", global = true)]
    pub fragments_url: Option<String>,
    /// Work queue (producer → virtualizer).
    #[arg(long, env = "FLOE_WORK_QUEUE_URL", global = true)]
    pub work_queue_url: Option<String>,
    /// Dead-letter queue of the work queue.
    #[arg(long, env = "FLOE_WORK_DLQ_URL", global = true)]
    pub work_dlq_url: Option<String>,
    /// Results queue (virtualizer → committer).
    #[arg(long, env = "FLOE_RESULTS_QUEUE_URL", global = true)]
    pub results_queue_url: Option<String>,
    /// Dead-letter queue of the results queue.
    #[arg(long, env = "FLOE_RESULTS_DLQ_URL", global = true)]
    pub results_dlq_url: Option<String>,
    /// Events queue (object notifications → `producer watch`).
    #[arg(long, env = "FLOE_EVENTS_QUEUE_URL", global = true)]
    pub events_queue_url: Option<String>,
    /// Dead-letter queue of the events queue.
    #[arg(long, env = "FLOE_EVENTS_DLQ_URL", global = true)]
    pub events_dlq_url: Option<String>,
    /// Only this ice sheet (AIS or GIS): group paths do not name the sheet, so one store holds one.
    #[arg(long, env = "FLOE_ICE_SHEET", global = true)]
    pub ice_sheet: Option<String>,
    /// Where gs:// requests go and with which credentials.
    #[command(flatten)]
    pub gcs: GcsArgs,
}

/// The GCS flags (`producer local` takes them too).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GcsArgs {
    /// Where gs:// requests go: an emulator's URL or host:port (fake-gcs-server). Default:
    /// STORAGE_EMULATOR_HOST, the variable Google's client libraries read, else
    /// storage.googleapis.com. The store's gs:// container records it, so icechunk reads
    /// chunks from the same place (readers elsewhere override it: see docs/fleet.md).
    #[arg(long, env = "FLOE_GCS_ENDPOINT", global = true)]
    pub gcs_endpoint: Option<String>,
    /// gs:// credentials: anonymous (public buckets, the default), application-default
    /// (GOOGLE_APPLICATION_CREDENTIALS, gcloud's login, or the metadata server), or the path
    /// of a service account key file. Default: GOOGLE_APPLICATION_CREDENTIALS's file when
    /// it is set, else anonymous.
    #[arg(long, env = "FLOE_GCS_CREDENTIALS", global = true)]
    pub gcs_credentials: Option<String>,
}

impl GcsArgs {
    /// The GCS settings: the environment's with these flags over them.
    pub fn settings(&self) -> Result<GcsSettings, ConfigError> {
        GcsSettings::from_env()
            .overridden(
                self.gcs_endpoint.as_deref(),
                self.gcs_credentials.as_deref(),
            )
            .map_err(|reason| ConfigError::Setting { reason })
    }
}

impl FleetArgs {
    /// File, then stack outputs, then environment and flags.
    pub async fn resolve(&self) -> Result<FleetConfig, ConfigError> {
        let default_file = PathBuf::from("floe.toml");
        let file = match &self.config {
            Some(p) => FleetConfig::from_file(p)?,
            None if default_file.is_file() => FleetConfig::from_file(&default_file)?,
            None => FleetConfig::default(),
        };
        let stack = match &self.stack {
            Some(name) => FleetConfig::from_outputs(&stack_outputs(name).await?),
            None => FleetConfig::default(),
        };
        Ok(file.overridden_by(stack).overridden_by(self.explicit()))
    }

    fn explicit(&self) -> FleetConfig {
        FleetConfig {
            source_url: self.source_url.clone(),
            store_url: self.store_url.clone(),
            fragments_url: self.fragments_url.clone(),
            work_queue_url: self.work_queue_url.clone(),
            work_dlq_url: self.work_dlq_url.clone(),
            results_queue_url: self.results_queue_url.clone(),
            results_dlq_url: self.results_dlq_url.clone(),
            events_queue_url: self.events_queue_url.clone(),
            events_dlq_url: self.events_dlq_url.clone(),
            ice_sheet: self.ice_sheet.clone(),
            gcs_endpoint: self.gcs.gcs_endpoint.clone(),
            gcs_credentials: self.gcs.gcs_credentials.clone(),
            ..FleetConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_override_weakest_first() {
        let file = FleetConfig::from_toml(
            "store_url = \"s3://b/store\"\nwork_queue_url = \"q-file\"\n",
            Path::new("floe.toml"),
        )
        .expect("toml");
        let outputs: BTreeMap<String, String> = [
            ("WorkQueueUrl".to_string(), "q-stack".to_string()),
            ("ResultsQueueUrl".to_string(), "r-stack".to_string()),
            ("SomethingElse".to_string(), "x".to_string()),
        ]
        .into();
        let flags = FleetConfig {
            results_queue_url: Some("r-flag".into()),
            ..Default::default()
        };
        let c = file
            .overridden_by(FleetConfig::from_outputs(&outputs))
            .overridden_by(flags);
        assert_eq!(c.require_store().expect("store"), "s3://b/store");
        assert_eq!(c.require_work_queue().expect("work"), "q-stack");
        assert_eq!(c.require_results_queue().expect("results"), "r-flag");
        let missing = c.require_fragments().expect_err("missing").to_string();
        assert!(missing.contains("--fragments") && missing.contains("FLOE_FRAGMENTS_URL"));
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_file() {
        let e =
            FleetConfig::from_toml("stor_url = \"x\"\n", Path::new("my.toml")).expect_err("typo");
        assert!(e.to_string().contains("my.toml") && e.to_string().contains("stor_url"));
    }

    #[test]
    fn toml_round_trips() {
        let c = FleetConfig {
            store_url: Some("s3://b/s".into()),
            ice_sheet: Some("AIS".into()),
            ..Default::default()
        };
        assert_eq!(
            FleetConfig::from_toml(&c.to_toml(), Path::new("x")).expect("parse"),
            c
        );
    }
}
