//! From planned batches to work-queue messages: what `enqueue` and `watch`
//! share. Groups the store holds from the same inputs are left alone, stored
//! series that only grew become appends, the rest are (re)built, and large
//! batches are cut into shards. One path, so a notification and a manual
//! enqueue plan a group the same way.

use anyhow::Result;
use floe_fleet::sqs::Queue;
use floe_store::{Committer, Repository};
use floe_wire::BatchDescriptor;

/// Why stored groups are rebuilt when `--no-append` is given.
pub const NO_APPEND: &str = "appends are off (--no-append)";

/// One group to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Its group path.
    pub group: String,
    /// The batch id the store will hold once it is committed.
    pub batch_id: String,
    /// Files the virtualizers read for it (the new ones, for an append).
    pub files: usize,
    /// `append`, `rebuild` (the store holds another state) or `build`.
    pub kind: &'static str,
}

/// What to send and why.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Groups already committed from the same inputs.
    pub unchanged: Vec<String>,
    /// Groups to send.
    pub outgoing: Vec<Outgoing>,
    /// Groups sent as appends, with how many files are new.
    pub appended: Vec<(String, usize)>,
    /// Stored groups rebuilt, and why.
    pub rebuilt: Vec<(String, String)>,
    /// Groups sent as shards: group path and shard count.
    pub sharded: Vec<(String, usize)>,
    /// The message bodies, in order.
    pub bodies: Vec<String>,
}

impl Prepared {
    /// Adds another part's groups and messages to these.
    pub fn merge(&mut self, other: Prepared) {
        self.unchanged.extend(other.unchanged);
        self.outgoing.extend(other.outgoing);
        self.appended.extend(other.appended);
        self.rebuilt.extend(other.rebuilt);
        self.sharded.extend(other.sharded);
        self.bodies.extend(other.bodies);
    }
}

/// Sorts planned batches into unchanged, appends and (re)builds against the
/// store (`None`: no store yet, everything is built), and encodes the messages.
/// `force` sends unchanged groups too; `appends_off` (the reason) rebuilds stored groups.
pub async fn prepare(
    repo: Option<&Repository>,
    batches: Vec<BatchDescriptor>,
    force: bool,
    appends_off: Option<&str>,
    limits: &floe_group::shard::ShardLimits,
) -> Result<Prepared> {
    let groups: Vec<String> = batches.iter().map(|b| b.group.group_path()).collect();
    let committed = match repo {
        Some(repo) => floe_store::commit::committed_batches(repo, &groups).await?,
        None => Default::default(),
    };
    let mut out = Prepared::default();
    let mut changed = Vec::new();
    for b in batches {
        let group = b.group.group_path();
        if !force && committed.get(&group) == Some(&b.batch_id) {
            out.unchanged.push(group);
        } else {
            changed.push(b);
        }
    }
    let changed = match repo {
        Some(repo) => {
            let planned = crate::archive::plan_appends(repo, changed, appends_off).await?;
            out.appended = planned.appended;
            out.rebuilt = planned.rebuilt;
            planned.batches
        }
        None => changed,
    };
    for b in &changed {
        let group = b.group.group_path();
        let messages = floe_group::shard::split(b, limits);
        if messages.len() > 1 {
            out.sharded.push((group.clone(), messages.len()));
        }
        for m in &messages {
            out.bodies.push(serde_json::to_string(m)?);
        }
        let kind = if b.append.is_some() {
            "append"
        } else if committed.contains_key(&group) {
            "rebuild"
        } else {
            "build"
        };
        out.outgoing.push(Outgoing {
            group,
            batch_id: b.batch_id.clone(),
            files: b.files.len(),
            kind,
        });
    }
    Ok(out)
}

/// Creates the parent groups (in one commit, so committers never race to
/// create them), then sends the bodies, reporting progress by count.
pub async fn send(
    committer: &Committer,
    parents: &[String],
    queue: &Queue,
    bodies: &[String],
    progress: impl FnMut(usize),
) -> Result<()> {
    if bodies.is_empty() {
        return Ok(());
    }
    committer.ensure_groups(parents).await?;
    queue.send_all(bodies, progress).await?;
    Ok(())
}
