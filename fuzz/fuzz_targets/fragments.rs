//! A manifest fragment read back from S3 is outside data: decoding must give a
//! fragment or a typed error, and a fragment that decodes must re-encode to one
//! that decodes to the same sources and references.
//!
//! The envelope carries a SHA-256 of its payload, which a fuzzer cannot forge,
//! so inputs starting with 1 are taken as the JSON document itself and wrapped
//! in a valid envelope here: that reaches the JSON decoder and the reference
//! checks behind the digest. Other inputs go to the envelope checks as they are.
#![no_main]

use floe_wire::ManifestFragment;
use libfuzzer_sys::fuzz_target;

#[path = "envelope.rs"]
mod envelope;

fuzz_target!(|data: &[u8]| {
    let bytes = match data.split_first() {
        Some((1, json)) => envelope::wrap(json),
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
