//! The fragment envelope for the fuzz targets `fragments` and `commit`: its SHA-256 cannot be
//! forged by a fuzzer, so inputs starting with 1 are taken as the JSON document and wrapped in a
//! valid envelope here.

use std::sync::OnceLock;

use floe_wire::ManifestFragment;
use sha2::Digest;

/// Magic and schema version, taken from a fragment this build encodes.
pub fn envelope_prefix() -> &'static [u8] {
    static PREFIX: OnceLock<Vec<u8>> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let empty = ManifestFragment {
            schema_version: floe_wire::SCHEMA_VERSION,
            batch_id: String::new(),
            group_path: String::new(),
            group_attributes: Default::default(),
            subgroups: Default::default(),
            sources: Vec::new(),
            arrays: Vec::new(),
            append: None,
            replaces: None,
        };
        empty.encode().expect("an empty fragment encodes")[..12].to_vec()
    })
}

/// `json` in a valid envelope.
pub fn wrap(json: &[u8]) -> Vec<u8> {
    let payload = zstd::encode_all(json, 1).expect("zstd compresses any bytes");
    let mut out = envelope_prefix().to_vec();
    out.extend_from_slice(&sha2::Sha256::digest(&payload));
    out.extend_from_slice(&payload);
    out
}
