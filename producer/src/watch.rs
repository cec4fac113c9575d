//! The planner behind `producer watch`: object notifications in, work-queue
//! batches out.
//!
//! A notification is a hint, never the truth. For each batch of notifications
//! the planner maps every key through the profile to its group, lists the
//! source again and plans the touched groups exactly as `producer enqueue`
//! does ([`crate::dispatch`]): a series that only grew becomes an append of
//! its new files, anything else rebuilds its group, and a group whose inputs
//! the store already holds is left alone. So duplicate, late and out-of-order
//! notifications change nothing: the listing decides.
//!
//! The planner never plans a group over its own batch in flight (sent, not yet
//! in the store): that append's base would be gone by the time it arrived. It
//! waits for the store to hold it (or for its failure to be recorded, or for
//! `in_flight_timeout`), so a steady stream of uploads becomes one append per
//! batch of notifications and group. A notification that cannot be read fails
//! permanently, with its reason recorded, and reaches the events DLQ.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use floe_fleet::events::{self, Notification, ObjectEvent};
use floe_fleet::handler::{BatchHandler, BatchOutcome, Message, MessageFailure};
use floe_fleet::records::{failure_record, message_key, Records, SeenEvent, SentBatch, Stage};
use floe_fleet::sqs::Queue;
use floe_group::archive::{ListedObject, SkipList};
use floe_group::profile::Profile;
use floe_source::SourceOptions;
use floe_store::Committer;
use tokio::sync::Mutex;

/// How the planner plans.
#[derive(Debug, Clone)]
pub struct WatchPolicy {
    /// Longest wait, in one batch, for a group's batch in flight to reach the store.
    pub wait_in_flight: Duration,
    /// A batch in flight longer than this is taken as lost, and its group planned again.
    pub in_flight_timeout: Duration,
    /// Plan appends (else every stored group that changed is rebuilt).
    pub appends: bool,
    /// How large batches are cut.
    pub shard_limits: floe_group::shard::ShardLimits,
}

/// What the planner needs, fixed for its lifetime.
pub struct WatchHandler {
    source: String,
    source_root: String,
    options: SourceOptions,
    profile: Profile,
    skip: SkipList,
    ice_sheet: Option<String>,
    committer: Committer,
    records: Records,
    work: Queue,
    policy: WatchPolicy,
    /// One batch at a time: the in-flight record is read, then written.
    serial: Mutex<()>,
}

/// Where a group's batch in flight is.
enum InFlightState {
    InFlight,
    Stored,
    Failed { append_refused: bool },
}

/// One notification message, read.
enum Read {
    Ignore,
    Objects(Vec<ObjectEvent>),
    Group(String),
}

impl WatchHandler {
    /// A planner of `source` with `profile`, writing to the store behind
    /// `committer` and sending on `work`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: String,
        options: SourceOptions,
        (profile, skip): (Profile, SkipList),
        ice_sheet: Option<String>,
        committer: Committer,
        records: Records,
        work: Queue,
        policy: WatchPolicy,
    ) -> Self {
        let source_root = format!(
            "{}/",
            floe_source::normalize_url(&source).trim_end_matches('/')
        );
        WatchHandler {
            source,
            source_root,
            options,
            profile,
            skip,
            ice_sheet,
            committer,
            records,
            work,
            policy,
            serial: Mutex::new(()),
        }
    }

    /// The group of an object, or why it is ignored.
    fn group_of(&self, event: &ObjectEvent) -> Result<String, String> {
        let url = event.url();
        let Some(relative_path) = url.strip_prefix(&self.source_root) else {
            return Err(format!("outside the source {}", self.source_root));
        };
        if !relative_path.to_ascii_lowercase().ends_with(".nc") {
            return Err("not a NetCDF file (*.nc)".into());
        }
        let object = ListedObject {
            url: url.clone(),
            relative_path: relative_path.to_string(),
            size: 0,
            etag: None,
            last_modified: None,
        };
        let plan = floe_group::archive::plan(&[object], &self.profile, &self.skip)
            .map_err(|e| e.to_string())?;
        match (plan.batches.first(), plan.skipped.first()) {
            (Some(b), _) => Ok(b.group.group_path()),
            (None, Some(s)) => Err(s.reason.clone()),
            (None, None) => Err("the profile maps it to no group".into()),
        }
    }

    async fn unreadable(&self, message: &Message, reason: String) -> MessageFailure {
        let key = message_key(&message.id);
        let record = failure_record(&key, "", None, &reason, false);
        if let Err(e) = self.records.put_failure(Stage::Events, &record).await {
            tracing::warn!(error = %e, message = %message.id, "could not record the failure reason");
        }
        MessageFailure {
            id: message.id.clone(),
            reason,
            permanent: true,
        }
    }

    /// Where the batch sent for a group is: still on its way (not in the
    /// store, no failure recorded since it was sent, not older than the
    /// timeout), or over.
    async fn in_flight_state(&self, group: &str, sent: &SentBatch) -> Result<InFlightState> {
        let committed = floe_store::commit::committed_batches(
            self.committer.repository(),
            &[group.to_string()],
        )
        .await?;
        if committed.get(group) == Some(&sent.batch_id) {
            return Ok(InFlightState::Stored);
        }
        for stage in [Stage::Work, Stage::Results] {
            let Some(f) = self.records.failure(stage, &sent.batch_id).await? else {
                continue;
            };
            // A record from an earlier sending of the same batch says nothing about this one.
            if f.retryable || f.at < sent.sent_at {
                continue;
            }
            tracing::warn!(group, batch = %sent.batch_id, reason = %f.reason, "the batch in flight failed; planning the group again");
            return Ok(InFlightState::Failed {
                append_refused: sent.kind == "append" && f.reason.starts_with("append refused"),
            });
        }
        let age = chrono::DateTime::parse_from_rfc3339(&sent.sent_at)
            .map(|t| chrono::Utc::now().signed_duration_since(t))
            .ok()
            .and_then(|d| d.to_std().ok())
            .unwrap_or_default();
        if age > self.policy.in_flight_timeout {
            tracing::warn!(group, batch = %sent.batch_id, age_s = age.as_secs(), "a batch in flight never reached the store; planning the group again");
            return Ok(InFlightState::Failed {
                append_refused: false,
            });
        }
        Ok(InFlightState::InFlight)
    }

    /// Waits for the touched groups' batches in flight. Returns the groups
    /// still waiting when the wait ends, and those whose append the committer
    /// refused (a file that arrived late, with steps inside the stored axis):
    /// they are rebuilt.
    async fn wait_for_in_flight(
        &self,
        groups: &BTreeSet<String>,
        in_flight: &mut BTreeMap<String, SentBatch>,
    ) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
        let until = Instant::now() + self.policy.wait_in_flight;
        let mut refused = BTreeSet::new();
        loop {
            let mut waiting = BTreeSet::new();
            for g in groups {
                let Some(sent) = in_flight.get(g) else {
                    continue;
                };
                match self.in_flight_state(g, sent).await? {
                    InFlightState::InFlight => {
                        waiting.insert(g.clone());
                    }
                    InFlightState::Stored => {
                        in_flight.remove(g);
                    }
                    InFlightState::Failed { append_refused } => {
                        if append_refused {
                            refused.insert(g.clone());
                        }
                        in_flight.remove(g);
                    }
                }
            }
            if waiting.is_empty() || Instant::now() >= until {
                return Ok((waiting, refused));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Lists the source, plans the groups and sends what changed; returns what was sent.
    async fn plan_and_send(
        &self,
        groups: &BTreeSet<String>,
        rebuild: &BTreeSet<String>,
    ) -> Result<Vec<crate::dispatch::Outgoing>> {
        let objects = crate::archive::list_archive(&self.source, &self.options).await?;
        let mut plan = floe_group::archive::plan(&objects, &self.profile, &self.skip)?;
        plan.batches
            .retain(|b| groups.contains(&b.group.group_path()));
        crate::archive::restrict_to_one_ice_sheet(&mut plan, self.ice_sheet.as_deref())?;
        let planned: BTreeSet<String> = plan.batches.iter().map(|b| b.group.group_path()).collect();
        for gone in groups.difference(&planned) {
            tracing::warn!(group = %gone, "no file of the group is left in the source; the store keeps its last state");
        }
        let parents = crate::archive::parent_groups(&plan);
        let (rebuilt, appendable): (Vec<_>, Vec<_>) = std::mem::take(&mut plan.batches)
            .into_iter()
            .partition(|b| rebuild.contains(&b.group.group_path()));
        let mut prepared = crate::dispatch::Prepared::default();
        let off = (!self.policy.appends).then_some(crate::dispatch::NO_APPEND);
        let refused =
            Some("its last append was refused (a file arrived with steps inside the stored axis)");
        for (batches, appends_off) in [(appendable, off), (rebuilt, refused)] {
            if batches.is_empty() {
                continue;
            }
            let part = crate::dispatch::prepare(
                Some(self.committer.repository()),
                batches,
                false,
                appends_off,
                &self.policy.shard_limits,
            )
            .await?;
            prepared.merge(part);
        }
        for (g, why) in &prepared.rebuilt {
            tracing::info!(group = %g, reason = %why, "rebuilding");
        }
        crate::dispatch::send(
            &self.committer,
            &parents,
            &self.work,
            &prepared.bodies,
            |_| {},
        )
        .await?;
        for o in &prepared.outgoing {
            tracing::info!(group = %o.group, kind = o.kind, files = o.files, batch = %o.batch_id, "sent");
        }
        Ok(prepared.outgoing)
    }

    async fn handle_batch(&self, messages: Vec<Message>) -> Result<BatchOutcome> {
        let _one_at_a_time = self.serial.lock().await;
        let mut state = self.records.watch().await?.unwrap_or_default();
        let mut outcome = BatchOutcome::default();
        // Message id → the groups it touches.
        let mut touches: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for m in &messages {
            let read = match events::parse(&m.body) {
                Ok(Notification::Test) => Read::Ignore,
                Ok(Notification::Objects(o)) => Read::Objects(o),
                Ok(Notification::Replan { group }) => Read::Group(group),
                Err(e) => {
                    outcome
                        .failures
                        .push(self.unreadable(m, e.to_string()).await);
                    continue;
                }
            };
            let mut groups = BTreeSet::new();
            if let Read::Group(g) = &read {
                tracing::info!(group = %g, "asked to plan the group again");
                groups.insert(g.clone());
            }
            if let Read::Objects(objects) = read {
                for o in objects {
                    state.events += 1;
                    let newer = state
                        .last_event
                        .as_ref()
                        .is_none_or(|l| l.event_time <= o.event_time);
                    if newer {
                        state.last_event = Some(SeenEvent {
                            url: o.url(),
                            event: o.event.clone(),
                            event_time: o.event_time.clone(),
                            seen_at: chrono::Utc::now().to_rfc3339(),
                        });
                    }
                    match self.group_of(&o) {
                        Ok(g) => {
                            groups.insert(g);
                        }
                        Err(reason) => {
                            tracing::info!(url = %o.url(), %reason, "ignored");
                            *state.ignored.entry(reason).or_default() += 1;
                        }
                    }
                }
            }
            touches.insert(m.id.clone(), groups);
        }
        let touched: BTreeSet<String> = touches.values().flatten().cloned().collect();
        let (waiting, refused) = self
            .wait_for_in_flight(&touched, &mut state.in_flight)
            .await?;
        let ready: BTreeSet<String> = touched.difference(&waiting).cloned().collect();
        if !ready.is_empty() {
            let sent_at = chrono::Utc::now().to_rfc3339();
            for o in self.plan_and_send(&ready, &refused).await? {
                state.in_flight.insert(
                    o.group.clone(),
                    SentBatch {
                        batch_id: o.batch_id,
                        sent_at: sent_at.clone(),
                        files: o.files,
                        kind: o.kind.to_string(),
                    },
                );
            }
        }
        self.records.put_watch(&state).await?;
        for (id, groups) in touches {
            if let Some(g) = groups.iter().find(|g| waiting.contains(*g)) {
                outcome.failures.push(MessageFailure {
                    id,
                    reason: format!(
                        "group {g} still has a batch in flight after {} s; planned again when this notification returns",
                        self.policy.wait_in_flight.as_secs()
                    ),
                    permanent: false,
                });
            }
        }
        Ok(outcome)
    }
}

impl BatchHandler for WatchHandler {
    async fn handle(&self, messages: Vec<Message>) -> BatchOutcome {
        match self
            .handle_batch(messages.clone())
            .await
            .context("planning from notifications")
        {
            Ok(outcome) => outcome,
            // The store, the source listing or the work queue failed: every
            // notification comes back and is planned again (harmless: the
            // listing decides, and unchanged groups are left alone).
            Err(e) => BatchOutcome::all_failed(&messages, &format!("{e:#}"), false),
        }
    }
}
