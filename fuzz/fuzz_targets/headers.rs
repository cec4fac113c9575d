//! Any byte string handed to the header readers must come back as a manifest or
//! a typed error: no panic, no unbounded allocation, no hang. The returned
//! ranges must also stay inside the file, since a reference past the end would
//! be a silent read error much later, in a reader of the store.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    if let Ok(manifest) = floe_formats::read_bytes(data.to_vec()) {
        for variable in &manifest.variables {
            for chunk in &variable.chunks {
                let end = chunk.offset.checked_add(chunk.length);
                assert!(
                    end.is_some_and(|end| end <= len),
                    "{}: chunk {:?} at {}+{} outside a {len}-byte file",
                    variable.variable,
                    chunk.index,
                    chunk.offset,
                    chunk.length
                );
            }
        }
    }
});
