//! A fragment from outside, through the committer's whole path: decode, the
//! checks of `floe_store::write::check_arrays`, and a commit by the real
//! `Committer` into an in-memory icechunk repository. The contract: a bad
//! fragment fails its own item with a reason, and the commit as a whole never
//! fails on it (nor panics); a fragment that passes is written and readable.
//!
//! As in `fragments`, inputs starting with 1 are the fragment's JSON, wrapped
//! in a valid envelope here (the digest cannot be forged); the sources'
//! URLs are pinned under the repository's one virtual chunk container so that
//! references reach icechunk's own checks.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use floe_store::{CommitItem, CommitPolicy, Committer};
use floe_wire::ManifestFragment;
use libfuzzer_sys::fuzz_target;

const CONTAINER: &str = "file:///fuzz-sources/";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

#[path = "envelope.rs"]
mod envelope;

async fn committer() -> Committer {
    let storage = icechunk::new_in_memory_storage()
        .await
        .expect("in-memory storage");
    let mut config = icechunk::RepositoryConfig::default();
    config
        .set_virtual_chunk_container(
            icechunk::virtual_chunks::VirtualChunkContainer::new(
                CONTAINER.to_string(),
                icechunk::ObjectStoreConfig::LocalFileSystem("/fuzz-sources".into()),
            )
            .expect("a container"),
        )
        .expect("the container is set");
    let repo = icechunk::Repository::create(storage)
        .config(config)
        .authorize_virtual_chunk_access(HashMap::from([(
            CONTAINER.to_string(),
            Some(icechunk::config::Credentials::LocalFileSystemAccess),
        )]))
        .execute()
        .await
        .expect("an in-memory repository");
    Committer::new(repo, CommitPolicy::default())
}

fuzz_target!(|data: &[u8]| {
    let bytes = match data.split_first() {
        Some((1, json)) => envelope::wrap(json),
        _ => data.to_vec(),
    };
    let Ok(mut fragment) = ManifestFragment::decode(&bytes) else {
        return;
    };
    for (i, source) in fragment.sources.iter_mut().enumerate() {
        source.url = format!("{CONTAINER}s{i}.nc");
    }
    let checked = floe_store::write::check_arrays(&fragment);
    let group_ok = floe_wire::check_group_path(&fragment.group_path).is_ok()
        && floe_wire::check_batch_id(&fragment.batch_id).is_ok();
    let report = runtime().block_on(async {
        let committer = committer().await;
        committer
            .commit(vec![CommitItem {
                id: "m0".into(),
                fragment,
            }])
            .await
    });
    // In memory, the store itself cannot fail: a bad fragment fails its item only.
    let report = report.expect("a commit never fails as a whole for a fragment");
    if checked.is_err() || !group_ok {
        assert!(
            report.written.is_empty(),
            "a fragment the checks refuse was written: {checked:?}"
        );
    }
});
