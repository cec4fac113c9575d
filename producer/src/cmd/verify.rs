//! `producer verify`: a finished store checked against its sources.
//!
//! For every planned group: it is in the store under the batch id of its
//! current inputs (else missing or stale); the references of every array equal,
//! chunk for chunk, those a fresh read of the sources' headers gives (so the
//! chunk counts equal the chunks allocated in the sources); and N sampled chunks
//! (`--all`: every one) read through icechunk equal, byte for byte, a ranged read
//! of their source range, and decode to the same values on two independent
//! paths: the store read as Zarr by `zarrs` (the codec pipeline floe declared)
//! and the source read by the NetCDF readers' own data path (the filter
//! pipeline the file declares). A wrong codec description passes the byte
//! comparison and fails the decoded one.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use floe_fleet::FleetArgs;
use floe_source::{Source, SourceOptions};
use floe_store::commit::CommittedGroup;
use floe_store::verify::{compare_refs, StoreReader};
use floe_store::{CloudSettings, StoreLocation};
use floe_wire::BatchDescriptor;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::archive::{plan_archive, restrict_to_one_ice_sheet, GroupFilter, ProfileArgs};

/// Options of `verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Where the store and the archive are (config file, stack, environment, flags).
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Only groups whose path matches these patterns (* globs; ISMIP6 groups also as
    /// INST/MODEL/EXP).
    #[arg(long)]
    pub filter: Vec<String>,
    /// Chunks per group read and compared byte for byte, spread over its arrays.
    #[arg(long, default_value_t = 2)]
    pub sample: usize,
    /// Compare every chunk (reads all the referenced data once).
    #[arg(long)]
    pub all: bool,
    /// The archive profile and skip list.
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// List every problem of each group (every chunk that differs), not only the first.
    #[arg(long, short)]
    pub verbose: bool,
}

/// One group's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct GroupCheck {
    /// Group path.
    pub group: String,
    /// `ok`, `partial` (right, but written without some variables, which
    /// `problems` name), `missing`, `stale` or `wrong`.
    pub status: &'static str,
    /// What is wrong, naming the array and chunk.
    pub problems: Vec<String>,
    /// Chunk references compared.
    pub references: usize,
    /// Chunks read and compared byte for byte.
    pub chunks_read: usize,
    /// Of those, chunks decoded on both paths and compared value for value
    /// (the others hold booleans or bytes, whose bytes alone are compared).
    pub chunks_decoded: usize,
}

/// The whole verdict.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The archive.
    pub source: String,
    /// The store.
    pub store: String,
    /// Every planned group.
    pub groups: Vec<GroupCheck>,
}

impl VerifyReport {
    /// Whether every group is right: `ok`, or `partial` (what the store holds
    /// of it is right; what it lacks is named in the report).
    pub fn passed(&self) -> bool {
        self.groups
            .iter()
            .all(|g| g.status == "ok" || g.status == "partial")
    }
}

/// Verifies a store given by location and source (also `producer local --verify`).
pub async fn verify(
    source: &str,
    store: &str,
    plan: Vec<BatchDescriptor>,
    options: &SourceOptions,
    sample: Option<usize>,
    show_progress: bool,
) -> Result<VerifyReport> {
    let location = StoreLocation::parse(store)?;
    let prefix = floe_store::location::container_prefix(&floe_source::normalize_url(source));
    let repo =
        floe_store::open_for_reading(&location, &CloudSettings::for_source(options), &[prefix])
            .await?
            .ok_or_else(|| anyhow::anyhow!("no Icechunk repository at {location}"))?;
    let groups: Vec<String> = plan.iter().map(|b| b.group.group_path()).collect();
    let committed = floe_store::commit::committed(&repo, &groups).await?;
    let reader = StoreReader::open(&repo).await?;
    let bar = if show_progress {
        ProgressBar::new(plan.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} groups verified {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut report = VerifyReport {
        source: source.to_string(),
        store: location.to_string(),
        groups: Vec::new(),
    };
    // Groups are checked several at a time (each is a batch of header reads and a few chunk
    // reads, latency-bound on object storage) and reported in plan order.
    let mut checks = futures::stream::iter(&plan)
        .map(|batch| check_planned(&reader, &committed, batch, options, sample))
        .buffered(VERIFY_CONCURRENCY);
    while let Some(check) = checks.next().await {
        if check.status != "ok" {
            bar.println(format!(
                "{} {}: {}",
                check.status.to_uppercase(),
                check.group,
                check.problems.join("; ")
            ));
        }
        bar.set_message(check.group.clone());
        report.groups.push(check);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(report)
}

/// Groups verified at once.
const VERIFY_CONCURRENCY: usize = 8;

/// One planned group: missing, stale (still compared, so the report names what changed) or
/// compared.
async fn check_planned(
    reader: &StoreReader,
    committed: &BTreeMap<String, CommittedGroup>,
    batch: &BatchDescriptor,
    options: &SourceOptions,
    sample: Option<usize>,
) -> GroupCheck {
    let group = batch.group.group_path();
    match committed.get(&group) {
        Some(c) if c.batch_id == batch.batch_id && !c.left_out.is_empty() => {
            let mut check = check_group(reader, batch, options, sample).await;
            if check.status == "ok" {
                check.status = "partial";
            }
            check.problems.extend(
                c.left_out
                    .iter()
                    .map(|w| format!("{} left out ({}): {}", w.variable, w.file, w.reason)),
            );
            check
        }
        None => GroupCheck {
            group,
            status: "missing",
            problems: vec!["not in the store".into()],
            references: 0,
            chunks_read: 0,
            chunks_decoded: 0,
        },
        Some(CommittedGroup { batch_id: id, .. }) if id != &batch.batch_id => {
            let mut check = check_group(reader, batch, options, sample).await;
            // What changed comes from what the store records of every input, not from
            // the chunks the sample happened to hit.
            let changes = match reader.recorded_inputs(&group).await {
                Ok(recorded) => floe_store::verify::changed_inputs(&recorded, &batch.files),
                Err(e) => vec![format!(
                    "what the store records of its inputs cannot be read: {e}"
                )],
            };
            let why = if changes.is_empty() {
                "no input differs from what the store records of it (ETag or modification time), so the profile or the planning changed".to_string()
            } else {
                format!(
                    "{} input(s) differ from the ones it was built from",
                    changes.len()
                )
            };
            let mut first = vec![format!(
                "the store holds batch {id}, the current inputs make batch {}: {why}",
                batch.batch_id
            )];
            first.extend(changes);
            check.problems.splice(0..0, first);
            check.status = "stale";
            check
        }
        Some(_) => check_group(reader, batch, options, sample).await,
    }
}

/// References and sampled bytes of one committed group.
async fn check_group(
    reader: &StoreReader,
    batch: &BatchDescriptor,
    options: &SourceOptions,
    sample: Option<usize>,
) -> GroupCheck {
    let group = batch.group.group_path();
    let mut check = GroupCheck {
        group: group.clone(),
        status: "ok",
        problems: Vec::new(),
        references: 0,
        chunks_read: 0,
        chunks_decoded: 0,
    };
    let (build, scans) = match floe_virtualizer::virtualize_batch_scanned(batch, options).await {
        Ok((build, _, scans)) => (build, scans),
        Err(e) => {
            check.status = "wrong";
            check
                .problems
                .push(format!("its sources cannot be read now: {e}"));
            return check;
        }
    };
    let fragment = &build.fragment;
    let sizes: BTreeMap<&str, u64> = fragment
        .sources
        .iter()
        .map(|f| (f.url.as_str(), f.size))
        .collect();
    // (array path, chunk index, url, offset, length) of every reference, for sampling.
    let mut candidates = Vec::new();
    for array in fragment.arrays.iter().filter(|a| !a.refs.is_empty()) {
        let path = format!("{group}/{}", array.name);
        let expected: BTreeMap<Vec<u32>, (String, u64, u64)> = array
            .refs
            .iter()
            .filter_map(|r| {
                let url = fragment.sources.get(r.source as usize)?.url.clone();
                Some((r.index.clone(), (url, r.offset, r.length)))
            })
            .collect();
        check.references += expected.len();
        match reader.chunks(&path).await {
            Ok(stored) => check.problems.extend(
                compare_refs(&expected, &stored)
                    .into_iter()
                    .map(|p| format!("{path}: {p}")),
            ),
            Err(e) => check
                .problems
                .push(format!("{path}: cannot be read from the store: {e}")),
        }
        candidates.extend(
            expected
                .into_iter()
                .map(|(index, (url, offset, length))| (path.clone(), index, url, offset, length)),
        );
    }
    let mut opened = OpenedSources {
        headers: scans
            .into_iter()
            .map(|s| (s.source.url.clone(), Arc::new(s.manifest)))
            .collect(),
        last: None,
    };
    for (path, index, url, offset, length) in spread(&candidates, sample) {
        check.chunks_read += 1;
        let stored = reader.chunk_bytes(path, index).await;
        let source = async {
            Source::resolve(url, options)?
                .read_range(*offset, *length)
                .await
        };
        match (stored, source.await) {
            (Ok(a), Ok(b)) if a == b => {
                let size = sizes.get(url.as_str()).copied().unwrap_or(offset + length);
                let at = SampledChunk { path, index, url, offset: *offset, length: *length, size };
                match compare_decoded(reader, &at, options, &mut opened).await {
                    Ok(true) => check.chunks_decoded += 1,
                    Ok(false) => {}
                    Err(problem) => check
                        .problems
                        .push(format!("{path}: chunk {index:?}: {problem}")),
                }
            }
            (Ok(_), Ok(_)) => check.problems.push(format!(
                "{path}: chunk {index:?}: the bytes icechunk serves differ from {url} at {offset}+{length}"
            )),
            (Err(e), _) => check.problems.push(format!(
                "{path}: chunk {index:?}: icechunk cannot serve it ({e})"
            )),
            (_, Err(e)) => check.problems.push(format!(
                "{path}: chunk {index:?}: its source range cannot be read ({e})"
            )),
        }
    }
    if !check.problems.is_empty() {
        check.status = "wrong";
    }
    check
}

/// One sampled chunk and the source range it references.
struct SampledChunk<'a> {
    path: &'a str,
    index: &'a [u32],
    url: &'a str,
    offset: u64,
    length: u64,
    size: u64,
}

/// The sources the sampled chunks are decoded from: every file's header as the
/// build just parsed it (no second header read), and the last file's storage
/// kept open, so that its block cache serves the next chunk of the same file
/// (the samples go array by array, so mostly file by file). One storage only, so
/// `--all` holds at most one source's cache (bounded by the block cache) at a time.
struct OpenedSources {
    headers: BTreeMap<String, Arc<floe_formats::FileManifest>>,
    last: Option<(String, floe_formats::DynStorage)>,
}

impl OpenedSources {
    fn get(
        &mut self,
        url: &str,
        size: u64,
        options: &SourceOptions,
    ) -> std::result::Result<(floe_formats::DynStorage, Arc<floe_formats::FileManifest>), String>
    {
        let manifest = self
            .headers
            .get(url)
            .cloned()
            .ok_or_else(|| format!("{url} is not one of the group's files"))?;
        if let Some((last_url, storage)) = &self.last {
            if last_url == url {
                return Ok((storage.clone(), manifest));
            }
        }
        let storage = Source::resolve(url, options)
            .map_err(|e| e.to_string())?
            .open(size, options)
            .storage;
        self.last = Some((url.to_string(), storage.clone()));
        Ok((storage, manifest))
    }
}

/// Decodes a chunk on two independent paths and compares the values: zarrs
/// reads it from the store with the codecs the store declares, and the NetCDF
/// readers read the same region of the source through the file's own filter
/// pipeline. `Ok(false)`: not a numeric type (its bytes were compared).
async fn compare_decoded(
    reader: &StoreReader,
    at: &SampledChunk<'_>,
    options: &SourceOptions,
    opened: &mut OpenedSources,
) -> std::result::Result<bool, String> {
    let Some(chunk) = reader
        .decoded_chunk(at.path, at.index)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(false);
    };
    let (storage, manifest) = opened.get(at.url, at.size, options)?;
    let name = at.path.rsplit('/').next().unwrap_or(at.path).to_string();
    let (url, offset, length) = (at.url.to_string(), at.offset, at.length);
    let (region, values) = tokio::task::spawn_blocking(move || {
        let region = floe_formats::data::region_of_range(&manifest, offset, length, &name)
            .ok_or_else(|| {
                format!("no variable of {url} holds {offset}+{length} as a hyperslab")
            })?;
        let values = floe_formats::data::read_region(
            storage,
            &region,
            Some(floe_formats::filters::registry()),
        )
        .map_err(|e| {
            format!(
                "the source readers cannot decode {url} {}: {e}",
                region.variable
            )
        })?;
        Ok::<_, String>((region, values))
    })
    .await
    .map_err(|e| e.to_string())??;
    match floe_store::verify::compare_values(&chunk, &region.extent, &values) {
        None => Ok(true),
        Some(difference) => Err(format!(
            "decoded by zarrs as the store describes it, against {} {} at {:?}: {difference} (the codecs in the store's metadata do not describe these bytes)",
            at.url, region.variable, region.origin
        )),
    }
}

/// `n` items spread evenly over `items` (all of them when `n` is `None` or larger).
fn spread<T>(items: &[T], n: Option<usize>) -> Vec<&T> {
    match n {
        Some(n) if n < items.len() => (0..n).map(|k| &items[k * items.len() / n.max(1)]).collect(),
        _ => items.iter().collect(),
    }
}

/// Runs `verify` from its arguments.
pub async fn run(args: &VerifyArgs) -> Result<VerifyReport> {
    let config = args.fleet.resolve().await?;
    let source = config.require_source()?.to_string();
    let store = config.require_store()?.to_string();
    let options = config.source_options()?;
    let (profile, skip) = args.profile.load()?;
    let filter = GroupFilter::for_profile(&args.filter, &profile)?;
    let mut plan = plan_archive(&source, &options, &profile, &skip, &filter)
        .await
        .with_context(|| format!("planning {source}"))?;
    restrict_to_one_ice_sheet(&mut plan, config.ice_sheet.as_deref())?;
    let sample = (!args.all).then_some(args.sample);
    verify(&source, &store, plan.batches, &options, sample, !args.json).await
}

/// The readable verdict.
/// The report for a person: a line of counts, then one line per group that is
/// not `ok` with its first problem and how many more there are; `verbose` lists
/// every problem.
pub fn render(report: &VerifyReport, verbose: bool) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let count = |status: &str| report.groups.iter().filter(|g| g.status == status).count();
    let references: usize = report.groups.iter().map(|g| g.references).sum();
    let read: usize = report.groups.iter().map(|g| g.chunks_read).sum();
    let decoded: usize = report.groups.iter().map(|g| g.chunks_decoded).sum();
    let _ = writeln!(
        s,
        "verified {} group(s) of {} in {}: {} ok, {} partial, {} missing, {} stale, {} wrong; {references} chunk reference(s) compared, {read} chunk(s) read byte for byte, {decoded} decoded and compared value for value",
        report.groups.len(),
        report.source,
        report.store,
        count("ok"),
        count("partial"),
        count("missing"),
        count("stale"),
        count("wrong"),
    );
    for g in report.groups.iter().filter(|g| g.status != "ok") {
        let status = g.status.to_uppercase();
        let counts = format!(
            "{} reference(s), {} chunk(s) read",
            g.references, g.chunks_read
        );
        match g.problems.as_slice() {
            [] => {
                let _ = writeln!(s, "  {status} {} ({counts})", g.group);
            }
            [first, rest @ ..] if !verbose => {
                let more = if rest.is_empty() {
                    String::new()
                } else {
                    format!(" (and {} more: --verbose lists them)", rest.len())
                };
                let _ = writeln!(s, "  {status} {} ({counts}): {first}{more}", g.group);
            }
            problems => {
                let _ = writeln!(
                    s,
                    "  {status} {} ({counts}): {} problem(s)",
                    g.group,
                    problems.len()
                );
                for p in problems {
                    let _ = writeln!(s, "    {p}");
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn samples_spread_over_the_whole_list() {
        let items: Vec<u32> = (0..10).collect();
        assert_eq!(spread(&items, Some(2)), vec![&0, &5]);
        assert_eq!(spread(&items, Some(20)).len(), 10);
        assert_eq!(spread(&items, None).len(), 10);
        assert!(spread(&items, Some(0)).is_empty());
    }
}
