//! Mutation fuzzing of the header readers on a small corpus of real files
//! (`tests/corpus`, written by tests/fixtures/make_fixtures.py with HDF5 1.10 and
//! 2.0): flipped bytes, overwritten words and truncations must give a value or a
//! typed error, never a panic. The libFuzzer target in `fuzz/` needs a nightly
//! toolchain and runs by hand; this runs on stable in every test run, and
//! `tests/regressions` keeps what the fuzzer found, with the error expected.

use std::path::PathBuf;

use proptest::prelude::*;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read corpus file"),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_files_parse() {
    for (name, bytes) in corpus() {
        let manifest = floe_formats::read_bytes(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            !manifest.variables.is_empty() || !manifest.problems.is_empty(),
            "{name}"
        );
    }
}

/// Inputs the fuzz target crashed on, and the error each must now give.
#[test]
fn fuzzer_findings_are_typed_errors() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let findings: &[(&str, &str)] = &[
        ("group_cycle.h5", "cycle in the group tree"),
        // An 814-byte NetCDF-3 header claiming millions of records: it took 12 s
        // and 2 GiB to build one reference per record before the size check.
        (
            "records_past_the_end.nc",
            "records of 0 bytes at a stride of 0 bytes",
        ),
        // Millions of records at a stride of 0 bytes: all inside the file, all the same bytes.
        ("records_without_stride.nc", "at a stride of"),
    ];
    for (file, expected) in findings {
        let bytes = std::fs::read(dir.join(file)).expect("regression file");
        match floe_formats::read_bytes(bytes) {
            Ok(m) => panic!(
                "{file}: expected an error, got {} variables",
                m.variables.len()
            ),
            Err(e) => assert!(e.to_string().contains(expected), "{file}: {e}"),
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Word { at: usize, value: u64 },
    Truncate { keep: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (
            any::<usize>(),
            prop_oneof![Just(u64::MAX), Just(0u64), Just(1u64 << 40), any::<u64>()]
        )
            .prop_map(|(at, value)| Mutation::Word { at, value }),
        any::<usize>().prop_map(|keep| Mutation::Truncate { keep }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
    #[test]
    fn mutated_headers_never_panic(file in 0usize..9, mutations in prop::collection::vec(mutation(), 1..4)) {
        let files = corpus();
        let (_, original) = &files[file % files.len()];
        let mut bytes = original.clone();
        // Mutate where the structure lives: the first 4 KiB hold the superblock,
        // object headers and chunk indexes of these small files.
        let window = bytes.len().clamp(1, 4096);
        for m in mutations {
            match m {
                Mutation::Flip { at, mask } => { let i = at % window; if i < bytes.len() { bytes[i] ^= mask; } }
                Mutation::Word { at, value } => {
                    let i = at % window;
                    for (k, b) in value.to_le_bytes().iter().enumerate() { if i + k < bytes.len() { bytes[i + k] = *b; } }
                }
                Mutation::Truncate { keep } => { let n = keep % (bytes.len() + 1); bytes.truncate(n); }
            }
        }
        let _ = floe_formats::read_bytes(bytes);
    }
}
