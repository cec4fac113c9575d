//! A profile is a user's TOML file. Parsing must give a profile or a typed
//! error naming it, and a profile that parses must classify any path without
//! panicking. Input: the TOML, then a NUL byte, then paths one per line.
#![no_main]

use floe_group::profile::Profile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (toml, paths) = text.split_once('\0').unwrap_or((text, ""));
    if let Ok(profile) = Profile::parse("fuzz.toml", toml) {
        let _ = profile.tag();
        let _ = profile.rule_text();
        for path in paths.lines().take(64) {
            let _ = profile.classify(path);
        }
    }
});
