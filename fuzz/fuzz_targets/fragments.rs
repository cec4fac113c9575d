//! A manifest fragment read back from S3 is outside data: decoding must give a
//! fragment or a typed error, and a fragment that decodes must re-encode to one
//! that decodes to the same sources and references.
//!
//! The envelope carries a SHA-256 of its payload, which a fuzzer cannot forge,
//! so inputs starting with 1 are taken as the JSON document itself and wrapped
//! in a valid envelope here: that reaches the JSON decoder and the reference
//! checks behind the digest. Other inputs go to the envelope checks as they are.
#![no_main]

use std::sync::OnceLock;

use floe_wire::ManifestFragment;
use libfuzzer_sys::fuzz_target;
use sha2::Digest;

/// Magic and schema version, taken from a fragment this build encodes.
fn envelope_prefix() -> &'static [u8] {
    static PREFIX: OnceLock<Vec<u8>> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let empty = ManifestFragment {
            schema_version: floe_wire::SCHEMA_VERSION,
            batch_id: String::new(),
            group_path: String::new(),
            group_attributes: Default::default(),
            sources: Vec::new(),
            arrays: Vec::new(),
            append: None,
            replaces: None,
        };
        empty.encode().expect("an empty fragment encodes")[..12].to_vec()
    })
}

fn wrap(json: &[u8]) -> Vec<u8> {
    let payload = zstd::encode_all(json, 1).expect("zstd compresses any bytes");
    let mut out = envelope_prefix().to_vec();
    out.extend_from_slice(&sha2::Sha256::digest(&payload));
    out.extend_from_slice(&payload);
    out
}

fuzz_target!(|data: &[u8]| {
    let bytes = match data.split_first() {
        Some((1, json)) => wrap(json),
        _ => data.to_vec(),
    };
    if let Ok(fragment) = ManifestFragment::decode(&bytes) {
        let again = fragment.encode().expect("a decoded fragment encodes");
        let back = ManifestFragment::decode(&again).expect("a re-encoded fragment decodes");
        assert_eq!(back.sources, fragment.sources);
        assert_eq!(back.ref_count(), fragment.ref_count());
        for (a, b) in back.arrays.iter().zip(&fragment.arrays) {
            assert_eq!(a.refs, b.refs);
            assert_eq!(a.inline_chunks, b.inline_chunks);
        }
    }
});
