//! Large groups: a group's batch split into shards, each shard's per-file
//! scans as a stored document, and the group assembled from them.
//!
//! Why shards: a descriptor carries every file inline, and SQS refuses a
//! message over 1 MiB (about 6,000 files), while one worker reading a
//! 20,000-file group leaves the others idle. A group larger than
//! [`ShardLimits`] is planned as several descriptors of consecutive files (in
//! URL order), each with [`ShardOf`]. A virtualizer reads its shard's headers
//! and stores their scans ([`ShardScans`]) under the group's planned batch id;
//! the one that then finds every shard stored assembles the group with the
//! same merge rules as an unsharded batch ([`assemble`]), so a sharded group
//! is byte-for-byte the group it would have been in one message.
//!
//! Pure: the virtualizer does the reads and writes.

use std::collections::BTreeMap;

use floe_wire::{BatchDescriptor, ShardOf, WireError, SCHEMA_VERSION};
use serde::{Deserialize, Serialize};

use crate::FileScan;

const SCANS_MAGIC: &[u8; 8] = b"FLOESHRD";

/// How large one message of a group may be before the group is sharded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardLimits {
    /// Files per shard; 0: never shard (one message per group, whatever its size).
    pub max_files: usize,
    /// Bytes of one descriptor's JSON. SQS takes 1 MiB now but 256 KiB in
    /// older accounts and emulators; the default stays well under both.
    pub max_message_bytes: usize,
}

/// Files per shard unless told otherwise: one virtualizer reads 1,000 headers
/// in a few seconds, and 1,000 descriptors' files stay near 200 KiB.
pub const DEFAULT_SHARD_FILES: usize = 1000;

/// Bytes of a descriptor unless told otherwise.
pub const DEFAULT_MESSAGE_BYTES: usize = 200 * 1024;

impl Default for ShardLimits {
    fn default() -> Self {
        ShardLimits {
            max_files: DEFAULT_SHARD_FILES,
            max_message_bytes: DEFAULT_MESSAGE_BYTES,
        }
    }
}

/// The messages of one planned group: the batch itself when it fits the
/// limits, else its shards, each of consecutive files and about the same size.
/// Each shard's batch id is the group's with its position (`…-s00003`).
pub fn split(batch: &BatchDescriptor, limits: &ShardLimits) -> Vec<BatchDescriptor> {
    if limits.max_files == 0 {
        return vec![batch.clone()];
    }
    let max_files = limits.max_files;
    let file_bytes: Vec<usize> = batch
        .files
        .iter()
        .map(|f| serde_json::to_vec(f).map_or(0, |v| v.len() + 1))
        .collect();
    let overhead = {
        let mut empty = batch.clone();
        empty.files.clear();
        // The shard field and a longer batch id, written out in full.
        serde_json::to_vec(&empty).map_or(0, |v| v.len()) + 160
    };
    let fits = |files: &[usize]| {
        files.len() <= max_files
            && overhead + files.iter().sum::<usize>() <= limits.max_message_bytes
    };
    if fits(&file_bytes) {
        return vec![batch.clone()];
    }
    let n = batch.files.len();
    let mut count = n.div_ceil(max_files).max(2);
    let bounds = loop {
        let bounds = even_bounds(n, count);
        if count >= n || bounds.windows(2).all(|w| fits(&file_bytes[w[0]..w[1]])) {
            break bounds;
        }
        count += 1;
    };
    let count = bounds.len() - 1;
    bounds
        .windows(2)
        .enumerate()
        .map(|(index, w)| {
            let mut shard = batch.clone();
            shard.files = batch.files[w[0]..w[1]].to_vec();
            shard.batch_id = shard_batch_id(&batch.batch_id, index);
            shard.shard = Some(ShardOf {
                group_batch_id: batch.batch_id.clone(),
                index: u32::try_from(index).unwrap_or(u32::MAX),
                count: u32::try_from(count).unwrap_or(u32::MAX),
            });
            shard
        })
        .collect()
}

/// `count + 1` boundaries cutting `n` items into `count` runs whose lengths
/// differ by at most one.
fn even_bounds(n: usize, count: usize) -> Vec<usize> {
    (0..=count).map(|i| i * n / count).collect()
}

/// The batch id of a group's shard.
pub fn shard_batch_id(group_batch_id: &str, index: usize) -> String {
    format!("{group_batch_id}-s{index:05}")
}

/// One shard's files as read: the durable result of a shard, from which the
/// group is assembled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardScans {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Where the shard belongs.
    pub shard: ShardOf,
    /// Its files' scans, in the descriptor's order. A file whose identity
    /// changed since planning is scanned as it is now, under its new identity.
    pub scans: Vec<FileScan>,
}

impl ShardScans {
    /// The scans of `shard`.
    pub fn new(shard: ShardOf, scans: Vec<FileScan>) -> Self {
        ShardScans {
            schema_version: SCHEMA_VERSION,
            shard,
            scans,
        }
    }

    /// Serializes, compresses and checksums (the fragments' envelope).
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        floe_wire::fragment::seal(SCANS_MAGIC, self.schema_version, self)
    }

    /// Checks the envelope and decodes.
    pub fn decode(bytes: &[u8]) -> Result<ShardScans, WireError> {
        let json = floe_wire::fragment::open(SCANS_MAGIC, bytes)?;
        let mut decoded: ShardScans =
            serde_json::from_slice(&json).map_err(|e| WireError::Corrupt(e.to_string()))?;
        crate::merge::share_metadata(&mut decoded.scans);
        Ok(decoded)
    }
}

/// Coordinate values as JSON that reads back bit for bit: finite values as
/// numbers (serde_json's `float_roundtrip`), the others as `"NaN"`,
/// `"Infinity"`, `"-Infinity"` (plain JSON would write `null` and fail to
/// read it back).
pub(crate) mod exact_values {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Value {
        Number(f64),
        Special(String),
    }

    fn to_value(v: f64) -> Value {
        if v.is_finite() {
            Value::Number(v)
        } else if v.is_nan() {
            Value::Special("NaN".into())
        } else if v > 0.0 {
            Value::Special("Infinity".into())
        } else {
            Value::Special("-Infinity".into())
        }
    }

    fn from_value<E: serde::de::Error>(v: Value) -> Result<f64, E> {
        match v {
            Value::Number(n) => Ok(n),
            Value::Special(s) => match s.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                other => Err(E::custom(format!("{other:?} is not a coordinate value"))),
            },
        }
    }

    pub fn serialize<S: Serializer>(
        coords: &BTreeMap<String, Vec<f64>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let out: BTreeMap<&String, Vec<Value>> = coords
            .iter()
            .map(|(k, v)| (k, v.iter().map(|x| to_value(*x)).collect()))
            .collect();
        out.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Vec<f64>>, D::Error> {
        let raw: BTreeMap<String, Vec<Value>> = BTreeMap::deserialize(d)?;
        raw.into_iter()
            .map(|(k, v)| Ok((k, v.into_iter().map(from_value).collect::<Result<_, _>>()?)))
            .collect()
    }
}

/// Why a sharded group cannot be assembled from what is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// The descriptor is a whole group, not a shard.
    #[error("batch {0} is not a shard of a group")]
    NotAShard(String),
    /// A shard's scans are not stored (yet).
    #[error("group batch {group_batch_id}: shard {index} of {count} is not stored")]
    Missing {
        /// The group's planned batch id.
        group_batch_id: String,
        /// The missing shard.
        index: u32,
        /// Shards of the group.
        count: u32,
    },
    /// A stored document belongs to another group or another split.
    #[error("group batch {group_batch_id}: stored shard {index} says it is of {found}, expected {expected}")]
    Mismatch {
        /// The group's planned batch id.
        group_batch_id: String,
        /// The shard at fault.
        index: u32,
        /// What it says it belongs to.
        found: String,
        /// What the descriptor says.
        expected: String,
    },
}

/// Assembles a sharded group: every shard of `shard_batch`'s group once,
/// their scans in shard order. Returns the group's batch (every file as
/// scanned, no shard, its batch id from those files: the planned one unless a
/// file was fixed meanwhile) and the scans.
pub fn assemble(
    shard_batch: &BatchDescriptor,
    stored: Vec<ShardScans>,
) -> Result<(BatchDescriptor, Vec<FileScan>), ShardError> {
    let Some(of) = &shard_batch.shard else {
        return Err(ShardError::NotAShard(shard_batch.batch_id.clone()));
    };
    let mut by_index: BTreeMap<u32, ShardScans> = BTreeMap::new();
    for s in stored {
        if s.shard.group_batch_id != of.group_batch_id || s.shard.count != of.count {
            return Err(ShardError::Mismatch {
                group_batch_id: of.group_batch_id.clone(),
                index: s.shard.index,
                found: format!("{} of {}", s.shard.group_batch_id, s.shard.count),
                expected: format!("{} of {}", of.group_batch_id, of.count),
            });
        }
        by_index.insert(s.shard.index, s);
    }
    let mut scans = Vec::new();
    for index in 0..of.count {
        let Some(s) = by_index.remove(&index) else {
            return Err(ShardError::Missing {
                group_batch_id: of.group_batch_id.clone(),
                index,
                count: of.count,
            });
        };
        scans.extend(s.scans);
    }
    crate::merge::share_metadata(&mut scans);
    let mut group = shard_batch.clone();
    group.shard = None;
    group.files = scans.iter().map(|s| s.source.clone()).collect();
    if group.append.is_some() {
        // An append's id covers the stored files too, which no shard lists.
        group.batch_id = of.group_batch_id.clone();
        return Ok((group, scans));
    }
    group.batch_id = crate::archive::batch_id(
        &group.profile,
        &group.group,
        group
            .concat
            .as_ref()
            .and_then(|c| c.file_variables.as_ref()),
        &group.files,
    );
    Ok((group, scans))
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_formats::{FileManifest, SourceFormat};
    use floe_wire::{GroupKey, SourceFile};

    fn batch(n: usize) -> BatchDescriptor {
        let group = GroupKey::new("mur/sst", Default::default());
        let files: Vec<SourceFile> = (0..n)
            .map(|i| SourceFile {
                url: format!("s3://archive/mur/{i:06}.nc"),
                size: 1000 + i as u64,
                etag: Some(format!("\"e{i}\"")),
                last_modified: Some("2026-01-01T00:00:00Z".into()),
                variable: "*".into(),
            })
            .collect();
        BatchDescriptor {
            schema_version: SCHEMA_VERSION,
            batch_id: crate::archive::batch_id("mur@1", &group, None, &files),
            profile: "mur@1".into(),
            group,
            files,
            concat: None,
            shard: None,
            append: None,
            replaces: None,
        }
    }

    fn scans_of(shard: &BatchDescriptor) -> ShardScans {
        let of = shard.shard.clone().expect("a shard");
        let scans = shard
            .files
            .iter()
            .map(|f| FileScan {
                source: f.clone(),
                manifest: FileManifest {
                    format: SourceFormat::Hdf5,
                    file_size: f.size,
                    attributes: Default::default(),
                    variables: Vec::new(),
                    problems: Vec::new(),
                    unlimited: Vec::new(),
                    groups: Default::default(),
                },
                coords: BTreeMap::from([(
                    "time".to_string(),
                    vec![f.size as f64, f64::NAN, f64::INFINITY, 0.1 + 0.2],
                )]),
            })
            .collect();
        ShardScans::new(of, scans)
    }

    #[test]
    fn a_group_within_the_limits_is_one_message() {
        let b = batch(1000);
        assert_eq!(split(&b, &ShardLimits::default()), vec![b]);
    }

    #[test]
    fn a_large_group_splits_into_even_consecutive_shards_under_the_limits() {
        let b = batch(20_001);
        let limits = ShardLimits::default();
        let shards = split(&b, &limits);
        assert_eq!(shards.len(), 21);
        let mut files = Vec::new();
        for (i, s) in shards.iter().enumerate() {
            let of = s.shard.as_ref().expect("shard");
            assert_eq!(
                (of.index as usize, of.count, of.group_batch_id.as_str()),
                (i, 21, b.batch_id.as_str())
            );
            assert_eq!(s.batch_id, format!("{}-s{i:05}", b.batch_id));
            assert!(s.validate().is_ok());
            assert!((952..=953).contains(&s.files.len()), "{}", s.files.len());
            let bytes = serde_json::to_vec(s).expect("json").len();
            assert!(bytes <= limits.max_message_bytes, "{bytes}");
            files.extend(s.files.clone());
        }
        assert_eq!(files, b.files);
    }

    #[test]
    fn long_urls_make_more_shards_to_stay_under_the_message_size() {
        let mut b = batch(900);
        for f in &mut b.files {
            f.url = format!("s3://archive/{}/{}", "deep/".repeat(60), f.url);
        }
        let limits = ShardLimits::default();
        let shards = split(&b, &limits);
        assert!(shards.len() > 1);
        for s in &shards {
            assert!(serde_json::to_vec(s).expect("json").len() <= limits.max_message_bytes);
        }
    }

    #[test]
    fn assembling_every_shard_gives_the_planned_group_and_keeps_coordinates_exact() {
        let b = batch(25);
        let limits = ShardLimits {
            max_files: 10,
            ..Default::default()
        };
        let shards = split(&b, &limits);
        assert_eq!(shards.len(), 3);
        // Stored in any order, each decoded from its envelope.
        let stored: Vec<ShardScans> = shards
            .iter()
            .rev()
            .map(|s| ShardScans::decode(&scans_of(s).encode().expect("encode")).expect("decode"))
            .collect();
        let (group, scans) = assemble(&shards[1], stored).expect("assemble");
        assert_eq!(group, b);
        assert_eq!(scans.len(), 25);
        let t = &scans[3].coords["time"];
        assert_eq!(t[0], 1003.0);
        assert!(t[1].is_nan());
        assert_eq!(t[2], f64::INFINITY);
        assert_eq!(t[3].to_bits(), (0.1f64 + 0.2).to_bits());
    }

    #[test]
    fn a_missing_or_foreign_shard_is_named() {
        let b = batch(25);
        let shards = split(
            &b,
            &ShardLimits {
                max_files: 10,
                ..Default::default()
            },
        );
        let two: Vec<ShardScans> = [&shards[0], &shards[2]]
            .iter()
            .map(|s| scans_of(s))
            .collect();
        let err = assemble(&shards[0], two.clone()).expect_err("shard 1 is missing");
        assert!(
            err.to_string().contains("shard 1 of 3 is not stored"),
            "{err}"
        );
        let mut foreign = scans_of(&shards[1]);
        foreign.shard.group_batch_id = "other".into();
        let mut stored = two;
        stored.push(foreign);
        let err = assemble(&shards[0], stored).expect_err("foreign");
        assert!(
            matches!(err, ShardError::Mismatch { index: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn shard_scans_refuse_a_fragment_envelope() {
        let bytes = scans_of(
            &split(
                &batch(25),
                &ShardLimits {
                    max_files: 10,
                    ..Default::default()
                },
            )[0],
        )
        .encode()
        .expect("encode");
        assert!(matches!(
            floe_wire::ManifestFragment::decode(&bytes),
            Err(WireError::BadMagic)
        ));
        assert!(matches!(
            ShardScans::decode(&bytes[..30]),
            Err(WireError::Truncated(30))
        ));
    }
}
