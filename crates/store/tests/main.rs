//! The committer core on a real local Icechunk repository: a batch of fragments
//! in which one is invalid commits every other one, once, and fails the bad one
//! alone with its own reason, without retrying it as contention.

use floe_store::{
    open_repository, CloudSettings, CommitItem, CommitPolicy, Committer, StoreLocation,
};
use floe_wire::{ArrayFragment, ManifestFragment, SourceFile, VirtualRef, SCHEMA_VERSION};
use serde_json::json;

fn fragment(source_dir: &std::path::Path, group: usize, length: u64) -> ManifestFragment {
    let zarr_json = json!({
        "zarr_format": 3, "node_type": "array", "shape": [2], "data_type": "float32",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": "NaN", "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "attributes": {}, "dimension_names": ["t"],
    });
    let refs = (0..2)
        .map(|i| VirtualRef {
            index: vec![i],
            source: 0,
            offset: u64::from(i) * 4,
            length,
        })
        .collect();
    ManifestFragment {
        schema_version: SCHEMA_VERSION,
        batch_id: format!("{group:032x}"),
        group_path: format!("G/g{group}"),
        group_attributes: Default::default(),
        subgroups: Default::default(),
        sources: vec![SourceFile {
            url: format!("file://{}/src.nc", source_dir.display()),
            size: 8,
            etag: None,
            last_modified: Some("2026-12-05T10:00:00+00:00".into()),
            variable: "v".into(),
        }],
        arrays: vec![ArrayFragment {
            name: "v".into(),
            zarr_json,
            refs,
            inline_chunks: vec![],
        }],
        append: None,
        replaces: None,
    }
}

/// A committer on a new local store, and the directory of its one 8-byte
/// source file (kept alive by the returned temporary directory).
async fn committer_on_a_new_store() -> (tempfile::TempDir, std::path::PathBuf, Committer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sources = dir.path().join("sources");
    std::fs::create_dir_all(&sources).expect("sources");
    std::fs::write(sources.join("src.nc"), [0u8; 8]).expect("source");
    let location =
        StoreLocation::parse(&dir.path().join("store").display().to_string()).expect("location");
    let prefix = format!("file://{}/", sources.display());
    let repo = open_repository(&location, &CloudSettings::default(), &[prefix])
        .await
        .expect("repository");
    (dir, sources, Committer::new(repo, CommitPolicy::default()))
}

/// A batch of ten with group 3 replaced by `bad`, committed: the nine others
/// must be written, and group 3 fail alone, in one attempt; its reason.
async fn nine_and_one(
    committer: &Committer,
    sources: &std::path::Path,
    bad: ManifestFragment,
) -> String {
    let mut items = batch(sources);
    items[3].fragment = bad;
    let report = committer.commit(items).await.expect("the store is fine");
    assert_eq!(report.written.len(), 9, "{report:?}");
    let [(id, reason)] = report.failed.as_slice() else {
        panic!("one failure: {report:?}")
    };
    assert_eq!(id, "m3");
    assert_eq!(report.attempts, 1, "never retried: {report:?}");
    reason.clone()
}

fn batch(sources: &std::path::Path) -> Vec<CommitItem> {
    (0..10)
        .map(|g| CommitItem {
            id: format!("m{g}"),
            // Group 3's references are of zero bytes, which icechunk refuses mid-commit.
            fragment: fragment(sources, g, if g == 3 { 0 } else { 4 }),
        })
        .collect()
}

#[tokio::test]
async fn one_invalid_fragment_fails_alone_and_the_nine_beside_it_are_committed() {
    let (_dir, sources, committer) = committer_on_a_new_store().await;
    let report = committer
        .commit(batch(&sources))
        .await
        .expect("the store is fine");
    assert_eq!(report.written.len(), 9, "{report:?}");
    assert!(!report.written.contains(&"m3".to_string()));
    let [(id, reason)] = report.failed.as_slice() else {
        panic!("one failure: {report:?}")
    };
    assert_eq!(id, "m3");
    assert!(reason.contains("reference of zero bytes"), "{reason}");
    assert_eq!(
        report.attempts, 1,
        "never retried as contention: {report:?}"
    );
    // Sent again: the nine are there already, the bad one fails again by name.
    let report = committer
        .commit(batch(&sources))
        .await
        .expect("the store is fine");
    assert!(report.written.is_empty(), "{report:?}");
    assert_eq!(report.skipped.len(), 9, "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
}

/// A fragment that passes floe's own checks but breaks a rule of icechunk's
/// (array metadata icechunk cannot read: `dimension_names` must be a list)
/// fails alone, with icechunk's reason, and is not retried.
#[tokio::test]
async fn what_icechunk_refuses_by_rule_fails_its_group_alone_without_retries() {
    let (_dir, sources, committer) = committer_on_a_new_store().await;
    let mut bad = fragment(&sources, 3, 4);
    bad.arrays[0].zarr_json["dimension_names"] = json!("t");
    let reason = nine_and_one(&committer, &sources, bad).await;
    assert!(reason.contains("bad metadata"), "{reason}");
}

/// A fragment carrying an attribute of more than a megabyte (the builder never
/// writes one: it names it instead) is refused alone, before a session.
#[tokio::test]
async fn a_fragment_with_an_oversized_attribute_is_refused_alone() {
    let (_dir, sources, committer) = committer_on_a_new_store().await;
    let mut bad = fragment(&sources, 3, 4);
    bad.arrays[0].zarr_json["attributes"]["history"] = json!("x".repeat(5 << 20));
    let reason = nine_and_one(&committer, &sources, bad).await;
    assert!(
        reason.contains("array v: attribute \"history\" of 5242882 bytes, more than the 1048576"),
        "{reason}"
    );
}

/// A NetCDF-4 file's tree inside a group: arrays named by their path, every
/// sub-group listed with its parent; anything else is refused by name before
/// a session is touched.
#[test]
fn subgroup_trees_are_checked_before_they_are_written() {
    let dir = std::path::Path::new("/nowhere");
    let with = |subgroups: &[&str], arrays: &[&str]| {
        let mut f = fragment(dir, 1, 4);
        let array = f.arrays.remove(0);
        f.arrays = arrays
            .iter()
            .map(|name| ArrayFragment {
                name: name.to_string(),
                ..array.clone()
            })
            .collect();
        f.subgroups = subgroups
            .iter()
            .map(|p| (p.to_string(), Default::default()))
            .collect();
        floe_store::write::check_arrays(&f)
    };
    assert_eq!(
        with(&["sub", "sub/inner"], &["v", "sub/w", "sub/inner/w"]),
        Ok(())
    );
    assert_eq!(with(&["empty"], &["v"]), Ok(()));
    let refused = [
        (
            with(&[], &["sub/w"]),
            "sub-group \"sub\", which the fragment does not list",
        ),
        (
            with(&["sub/inner"], &["v"]),
            "sub-group \"sub\", which the fragment does not list",
        ),
        (with(&["sub"], &["sub"]), "both a sub-group and an array"),
        (with(&["_floe"], &["v"]), "where floe keeps"),
        (with(&["sub"], &["sub/../v"]), "not a plain name"),
        (with(&["sub"], &["sub/__v"]), "Zarr v3 reserves"),
        (with(&[], &["/v"]), "not a plain name"),
    ];
    for (result, reason) in refused {
        let error = result.expect_err(reason);
        assert!(error.contains(reason), "{error} (expected {reason})");
    }
}
