//! `Source::open_header` on real object stores (in memory and the local file system): one
//! request for a small file, ranged reads under the first answer's identity for a large one.

use std::sync::Arc;

use floe_source::{Source, SourceError, SourceOptions};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

fn options(block: usize) -> SourceOptions {
    SourceOptions {
        block_size: Some(block),
        ..SourceOptions::default()
    }
}

async fn stored(store: &Arc<dyn ObjectStore>, name: &str, bytes: Vec<u8>) -> Source {
    store
        .put(&Path::from(name), bytes.into())
        .await
        .expect("put");
    Source::from_store(
        &format!("memory:///{name}"),
        store.clone(),
        Path::from(name),
    )
}

fn read_all(storage: &floe_source::OpenedHeader) -> Vec<u8> {
    let len = storage.storage.len();
    storage
        .storage
        .read_range(0, len as usize)
        .expect("read")
        .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_file_is_one_request_and_answers_its_size() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let bytes: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let source = stored(&store, "small.nc", bytes.clone()).await;
    let opened = source.open_header(&options(4096)).await.expect("open");
    assert_eq!(opened.info.size, 1000);
    assert!(opened.info.etag.is_some());
    assert_eq!(opened.counters.requests(), 1);
    assert_eq!(read_all(&opened), bytes);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_file_is_read_by_ranges_under_the_first_answer_s_identity() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
    let source = stored(&store, "large.nc", bytes.clone()).await;
    let opened = source.open_header(&options(1024)).await.expect("open");
    assert_eq!(opened.info.size, 10_000);
    let storage = opened.storage.clone();
    let tail =
        tokio::task::spawn_blocking(move || storage.read_range(9_000, 1_000).map(|b| b.to_vec()))
            .await
            .expect("join")
            .expect("read");
    assert_eq!(tail, bytes[9_000..]);
    // The first request (which told the size), then the two 1 KiB blocks the tail spans.
    assert_eq!(opened.counters.requests(), 3);
    // Replaced since it was opened: named as changed, never read under its old identity.
    store
        .put(&Path::from("large.nc"), vec![0u8; 20_000].into())
        .await
        .expect("put");
    let storage = opened.storage.clone();
    let error =
        tokio::task::spawn_blocking(move || storage.read_range(2_048, 16).map(|b| b.to_vec()))
            .await
            .expect("join")
            .expect_err("a replaced object");
    assert!(error.to_string().contains("changed since"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_and_missing_files_on_the_local_file_system() {
    let dir = std::env::temp_dir().join(format!("floe-open-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("empty.nc"), b"").expect("write");
    std::fs::write(dir.join("small.nc"), b"CDF\x01 a few bytes").expect("write");
    let url = |name: &str| format!("file://{}", dir.join(name).display());
    let open = |name: &str| {
        let url = url(name);
        async move {
            Source::resolve(&url, &SourceOptions::default())
                .expect("resolve")
                .open_header(&SourceOptions::default())
                .await
        }
    };
    let empty = open("empty.nc").await.expect("an empty file opens");
    assert_eq!((empty.info.size, empty.storage.len()), (0, 0));
    let small = open("small.nc").await.expect("open");
    assert_eq!(read_all(&small), b"CDF\x01 a few bytes");
    assert!(matches!(
        open("missing.nc").await,
        Err(SourceError::NotFound { .. })
    ));
    std::fs::remove_dir_all(&dir).expect("clean up");
}
