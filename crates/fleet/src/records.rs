//! What the fleet keeps next to the fragments, under one prefix
//! (`fragments_url`):
//!
//! - `fragments/{batch_id}/{sha256}.floefrag`: a group's manifest fragment.
//!   Content-addressed, so a duplicate delivery that rebuilt the fragment can
//!   never make an earlier result message point at different bytes;
//! - `failures/{stage}/{batch_id}.json`: why a batch failed ([`FailureRecord`]),
//!   which `producer dlq list` shows; removed when the batch later succeeds;
//! - `shards/{group_batch_id}/{count}/{index}.floeshard`: one shard's
//!   per-file scans of a group too large for one message (`floe_group::shard`),
//!   from which the group is assembled once every shard is stored. The count
//!   is in the key: the same group split another way never mixes with this one;
//! - `plan.json`: the groups the last `producer enqueue` planned, with their
//!   batch ids, which `producer status` compares with the store;
//! - `watch.json`: what `producer watch` last saw and sent ([`WatchState`]):
//!   the batches it has in flight, which it never plans over, and the last
//!   notification, which `producer status` shows.

use std::collections::BTreeMap;

use floe_source::{Source, SourceError, SourceOptions};
use floe_wire::{FailureRecord, ManifestFragment};
use serde::{Deserialize, Serialize};

/// Which queue's consumer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// The virtualizer (work queue).
    Work,
    /// The committer (results queue).
    Results,
    /// The planner, `producer watch` (events queue).
    Events,
}

impl Stage {
    /// Its name in keys and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Work => "work",
            Stage::Results => "results",
            Stage::Events => "events",
        }
    }
}

/// Errors of record access.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] SourceError),
    /// A record is not what floe wrote.
    #[error("{url}: {reason}")]
    Invalid {
        /// The record.
        url: String,
        /// Why.
        reason: String,
    },
}

/// The groups an enqueue planned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnqueuedPlan {
    /// When, RFC 3339.
    pub at: String,
    /// The archive.
    pub source: String,
    /// The store.
    pub store: String,
    /// Group path → batch id of every planned group (enqueued or already committed).
    pub groups: BTreeMap<String, String>,
}

/// A batch `producer watch` sent and the store does not hold yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentBatch {
    /// Its batch id (an append carries the id of the whole group it makes).
    pub batch_id: String,
    /// When it was sent, RFC 3339.
    pub sent_at: String,
    /// Files it reads (the new ones, for an append).
    pub files: usize,
    /// `append` or `rebuild` or `build`.
    pub kind: String,
}

/// The last notification `producer watch` read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenEvent {
    /// The object's URL.
    pub url: String,
    /// The S3 event name (`ObjectCreated:Put`, …).
    pub event: String,
    /// When S3 says it happened, RFC 3339.
    pub event_time: String,
    /// When the planner read it, RFC 3339.
    pub seen_at: String,
}

/// What `producer watch` keeps between batches of notifications.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchState {
    /// Group path → the batch sent for it that the store does not hold yet.
    pub in_flight: BTreeMap<String, SentBatch>,
    /// The newest notification read.
    pub last_event: Option<SeenEvent>,
    /// Notifications read since the state was created.
    pub events: u64,
    /// Notifications ignored, by reason (outside the source, matching no profile, …).
    pub ignored: BTreeMap<String, u64>,
}

/// The records under one prefix.
#[derive(Debug, Clone)]
pub struct Records {
    base: String,
    options: SourceOptions,
}

impl Records {
    /// Records under `base_url` (`s3://bucket/prefix` or a directory).
    pub fn new(base_url: &str, options: SourceOptions) -> Self {
        Records {
            base: floe_source::normalize_url(base_url)
                .trim_end_matches('/')
                .to_string(),
            options,
        }
    }

    /// The prefix URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn object(&self, key: &str) -> Result<Source, RecordError> {
        Ok(Source::resolve(
            &format!("{}/{key}", self.base),
            &self.options,
        )?)
    }

    /// Where the fragment of `batch_id` whose bytes hash to `sha256` is kept: the
    /// one URL a result message of this fleet may name.
    pub fn fragment_url(&self, batch_id: &str, sha256: &str) -> Result<String, RecordError> {
        Ok(self
            .object(&format!("fragments/{batch_id}/{sha256}.floefrag"))?
            .url()
            .to_string())
    }

    /// Stores an encoded fragment; returns its URL and SHA-256.
    pub async fn put_fragment(
        &self,
        batch_id: &str,
        bytes: Vec<u8>,
    ) -> Result<(String, String), RecordError> {
        let sha = ManifestFragment::digest_of(&bytes);
        let object = self.object(&format!("fragments/{batch_id}/{sha}.floefrag"))?;
        object.put(bytes.into()).await?;
        Ok((object.url().to_string(), sha))
    }

    /// Stores one shard's scans under its group's planned batch id; returns
    /// the URL. Deterministic: a redelivered shard overwrites its own scans.
    pub async fn put_shard_scans(
        &self,
        group_batch_id: &str,
        count: u32,
        index: u32,
        bytes: Vec<u8>,
    ) -> Result<String, RecordError> {
        let object = self.object(&format!(
            "shards/{group_batch_id}/{count}/{index:05}.floeshard"
        ))?;
        object.put(bytes.into()).await?;
        Ok(object.url().to_string())
    }

    /// The URLs of the scans stored for a group split into `count` shards, in
    /// shard order.
    pub async fn stored_shard_scans(
        &self,
        group_batch_id: &str,
        count: u32,
    ) -> Result<Vec<String>, RecordError> {
        let listed = floe_source::list(
            &format!("{}/shards/{group_batch_id}/{count}/", self.base),
            &self.options,
        )
        .await?;
        Ok(listed
            .into_iter()
            .map(|o| o.url)
            .filter(|u| u.ends_with(".floeshard"))
            .collect())
    }

    /// The bytes of a stored record.
    pub async fn read(&self, url: &str) -> Result<Vec<u8>, RecordError> {
        Ok(Source::resolve(url, &self.options)?
            .read_all()
            .await?
            .to_vec())
    }

    fn failure_key(stage: Stage, batch_id: &str) -> String {
        format!("failures/{}/{batch_id}.json", stage.as_str())
    }

    async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<(), RecordError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| RecordError::Invalid {
            url: format!("{}/{key}", self.base),
            reason: e.to_string(),
        })?;
        self.object(key)?.put(bytes.into()).await?;
        Ok(())
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, RecordError> {
        let object = self.object(key)?;
        match object.read_if_exists().await? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| RecordError::Invalid {
                        url: object.url().to_string(),
                        reason: e.to_string(),
                    })
            }
        }
    }

    /// Records why a batch failed.
    pub async fn put_failure(
        &self,
        stage: Stage,
        record: &FailureRecord,
    ) -> Result<(), RecordError> {
        self.put_json(&Self::failure_key(stage, &record.batch_id), record)
            .await
    }

    /// The recorded failure of a batch, if any.
    pub async fn failure(
        &self,
        stage: Stage,
        batch_id: &str,
    ) -> Result<Option<FailureRecord>, RecordError> {
        self.get_json(&Self::failure_key(stage, batch_id)).await
    }

    /// Forgets a failure (the batch succeeded since).
    pub async fn clear_failure(&self, stage: Stage, batch_id: &str) -> Result<(), RecordError> {
        Ok(self
            .object(&Self::failure_key(stage, batch_id))?
            .delete()
            .await?)
    }

    /// Stores the plan of an enqueue.
    pub async fn put_plan(&self, plan: &EnqueuedPlan) -> Result<(), RecordError> {
        self.put_json("plan.json", plan).await
    }

    /// Stores the planner's state.
    pub async fn put_watch(&self, state: &WatchState) -> Result<(), RecordError> {
        self.put_json("watch.json", state).await
    }

    /// The planner's state, if it ever ran.
    pub async fn watch(&self) -> Result<Option<WatchState>, RecordError> {
        self.get_json("watch.json").await
    }

    /// The plan of the last enqueue, if any.
    pub async fn plan(&self) -> Result<Option<EnqueuedPlan>, RecordError> {
        self.get_json("plan.json").await
    }
}

/// The key under which a message that is not even a valid batch is recorded.
pub fn message_key(message_id: &str) -> String {
    format!("message-{message_id}")
}

/// The key a message's failure is recorded under, and looked up by (`producer
/// dlq list`): its batch id when that is one floe could have made (safe as an
/// object key), else the message's own ([`message_key`]). Both sides call this,
/// so a refused message's reason is found whatever it was refused for.
pub fn failure_key(batch_id: Option<&str>, message_id: &str) -> String {
    match batch_id {
        Some(id) if floe_wire::check_batch_id(id).is_ok() => id.to_string(),
        _ => message_key(message_id),
    }
}

/// A failure record made now; its reason is bounded
/// ([`floe_wire::Limits::reason_chars`]).
pub fn failure_record(
    batch_id: &str,
    group_path: &str,
    file: Option<String>,
    reason: &str,
    retryable: bool,
) -> FailureRecord {
    FailureRecord {
        schema_version: floe_wire::SCHEMA_VERSION,
        batch_id: batch_id.to_string(),
        group_path: group_path.to_string(),
        file,
        // A reason quoting hostile input (a 100 KB calendar name) stays readable.
        reason: floe_wire::bounded(reason, floe_wire::limits().reason_chars as usize),
        retryable,
        at: chrono::Utc::now().to_rfc3339(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_round_trip_on_the_local_filesystem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let records = Records::new(&dir.path().display().to_string(), SourceOptions::default());
        assert_eq!(
            records.failure(Stage::Work, "b1").await.expect("read"),
            None
        );
        let r = failure_record(
            "b1",
            "A_B/exp",
            Some("file:///x.nc".into()),
            "truncated",
            false,
        );
        records.put_failure(Stage::Work, &r).await.expect("put");
        assert_eq!(
            records.failure(Stage::Work, "b1").await.expect("read"),
            Some(r)
        );
        assert_eq!(
            records.failure(Stage::Results, "b1").await.expect("read"),
            None
        );
        records
            .clear_failure(Stage::Work, "b1")
            .await
            .expect("clear");
        records
            .clear_failure(Stage::Work, "b1")
            .await
            .expect("clear twice");
        assert_eq!(
            records.failure(Stage::Work, "b1").await.expect("read"),
            None
        );

        let (url, sha) = records
            .put_fragment("b1", b"bytes".to_vec())
            .await
            .expect("fragment");
        assert!(url.ends_with(&format!("fragments/b1/{sha}.floefrag")));
        let back = Source::resolve(&url, &SourceOptions::default())
            .expect("resolve")
            .read_all()
            .await
            .expect("read");
        assert_eq!(&back[..], b"bytes");
    }
}
