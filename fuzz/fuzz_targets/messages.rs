//! Any SQS body must decode to a message or a typed error. A batch descriptor
//! that validates must name a group inside the store (no `..`, no empty or
//! absolute component) and survive a re-encode unchanged, since the committer
//! and the DLQ tools re-read what the producer wrote.
#![no_main]

use floe_wire::{BatchDescriptor, FailureRecord, ResultMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(batch) = floe_wire::decode_message::<BatchDescriptor>(body) {
        if batch.validate().is_ok() {
            let path = batch.group.group_path();
            assert!(!path.starts_with('/'), "absolute group path {path:?}");
            assert!(
                path.split('/').all(|p| !p.is_empty() && p != "." && p != ".."),
                "group path {path:?} leaves its group"
            );
            let again = serde_json::to_string(&batch).expect("a decoded batch encodes");
            let back: BatchDescriptor =
                floe_wire::decode_message(&again).expect("a re-encoded batch decodes");
            assert_eq!(back, batch);
        }
    }
    let _ = floe_wire::decode_message::<ResultMessage>(body);
    let _ = floe_wire::decode_message::<FailureRecord>(body);
});
