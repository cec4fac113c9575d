//! # floe-committer: manifest fragments into one Icechunk store
//!
//! The handler core shared by the CLI (`committer apply`), the worker loop and
//! the Lambda entry point ([`handler`]): decode each fragment, reject bad ones
//! individually, then commit all good ones together through
//! [`floe_store::Committer`].

#![warn(missing_docs)]

pub mod cli;
pub mod cmd;
pub mod handler;

use floe_store::{CommitItem, CommitReport, Committer};
use floe_wire::ManifestFragment;

/// One fragment as received: its name (message id, file) and its bytes or the
/// reason they could not be fetched.
#[derive(Debug, Clone)]
pub struct FragmentInput {
    /// Message id or file name; outcomes are reported against it.
    pub id: String,
    /// The encoded fragment.
    pub bytes: Result<Vec<u8>, String>,
    /// Expected SHA-256, when the message carried one.
    pub sha256: Option<String>,
}

/// Decodes and verifies a fragment, naming it in the error.
pub fn decode(input: &FragmentInput) -> Result<ManifestFragment, String> {
    let bytes = input
        .bytes
        .as_ref()
        .map_err(|e| format!("fragment {}: {e}", input.id))?;
    if let Some(expected) = &input.sha256 {
        let actual = ManifestFragment::digest_of(bytes);
        if &actual != expected {
            return Err(format!(
                "fragment {}: SHA-256 {actual} does not match the message's {expected}",
                input.id
            ));
        }
    }
    ManifestFragment::decode(bytes).map_err(|e| format!("fragment {}: {e}", input.id))
}

/// Commits every decodable fragment in one commit; undecodable ones fail alone.
pub async fn apply(
    committer: &Committer,
    inputs: Vec<FragmentInput>,
) -> floe_store::Result<CommitReport> {
    let mut items = Vec::new();
    let mut failed = Vec::new();
    for input in &inputs {
        match decode(input) {
            Ok(fragment) => items.push(CommitItem {
                id: input.id.clone(),
                fragment,
            }),
            Err(e) => failed.push((input.id.clone(), e)),
        }
    }
    let mut report = committer.commit(items).await?;
    report.failed.extend(failed);
    Ok(report)
}

/// The virtual chunk containers fragments need: the longest common directory
/// of their source URLs (a bucket at least).
pub fn common_source_prefix(fragments: &[ManifestFragment]) -> Option<String> {
    let urls: Vec<&str> = fragments
        .iter()
        .flat_map(|f| f.sources.iter().map(|s| s.url.as_str()))
        .collect();
    let first = *urls.first()?;
    let mut prefix = first[..first.rfind('/')? + 1].to_string();
    for url in &urls[1..] {
        while !url.starts_with(&prefix) {
            prefix.pop();
            let cut = prefix.rfind('/')?;
            prefix.truncate(cut + 1);
        }
    }
    let scheme_end = prefix.find("://")? + 3;
    let bucket_end = if prefix.starts_with("file://") {
        scheme_end
    } else {
        scheme_end + prefix[scheme_end..].find('/')?
    };
    (prefix.len() > bucket_end).then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_wire::{SourceFile, SCHEMA_VERSION};

    fn frag(urls: &[&str]) -> ManifestFragment {
        ManifestFragment {
            schema_version: SCHEMA_VERSION,
            batch_id: "b".into(),
            group_path: "A_B/c".into(),
            group_attributes: Default::default(),
            subgroups: Default::default(),
            sources: urls
                .iter()
                .map(|u| SourceFile {
                    url: u.to_string(),
                    size: 1,
                    etag: None,
                    last_modified: None,
                    variable: "v".into(),
                })
                .collect(),
            arrays: vec![],
            append: None,
            replaces: None,
        }
    }

    #[test]
    fn common_prefix_is_a_directory() {
        let f = [
            frag(&["s3://b/x/A/1.nc", "s3://b/x/B/2.nc"]),
            frag(&["s3://b/x/A/3.nc"]),
        ];
        assert_eq!(common_source_prefix(&f).as_deref(), Some("s3://b/x/"));
        assert_eq!(
            common_source_prefix(&[frag(&["file:///d/a.nc", "file:///e/b.nc"])]).as_deref(),
            Some("file:///")
        );
        assert_eq!(
            common_source_prefix(&[frag(&["s3://b/a.nc", "s3://c/b.nc"])]),
            None
        );
    }

    #[test]
    fn bad_inputs_are_named() {
        let bad = FragmentInput {
            id: "m1".into(),
            bytes: Ok(b"garbage".to_vec()),
            sha256: None,
        };
        assert!(decode(&bad)
            .expect_err("bad")
            .contains("fragment m1: not a floe document of this kind"));
        let good = frag(&["s3://b/x/a.nc"]).encode().expect("encode");
        let wrong = FragmentInput {
            id: "m2".into(),
            bytes: Ok(good),
            sha256: Some("00".into()),
        };
        assert!(decode(&wrong).expect_err("sha").contains("does not match"));
        let missing = FragmentInput {
            id: "m3".into(),
            bytes: Err("not found".into()),
            sha256: None,
        };
        assert_eq!(
            decode(&missing).expect_err("missing"),
            "fragment m3: not found"
        );
    }
}
