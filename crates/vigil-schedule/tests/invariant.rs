//! The crate's invariant (its Cargo.toml): pure. Its dependencies are data crates only, and its
//! source reads no clock and touches no file, socket, process or environment. A check on the
//! text, cheap enough to run with the unit tests; the workspace's dependency-graph check
//! (`crates/vigil-alarms/tests/invariant.rs`) is where the forbidden crates are listed.

use std::fs;
use std::path::Path;

const ALLOWED_DEPENDENCIES: [&str; 4] = ["chrono", "chrono-tz", "serde", "thiserror"];

const FORBIDDEN_TEXT: [&str; 10] = [
    "Utc::now",
    "Local::now",
    "SystemTime",
    "Instant::now",
    "std::fs",
    "std::net",
    "std::process",
    "std::env",
    "std::thread",
    "tokio",
];

#[test]
fn dependencies_are_data_crates_only() {
    let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .expect("read Cargo.toml");
    let section = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] section")
        .split("\n[")
        .next()
        .unwrap_or_default();
    let names: Vec<&str> = section
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split(['.', '=', ' ']).next())
        .collect();
    assert_eq!(names, ALLOWED_DEPENDENCIES);
}

#[test]
fn the_source_reads_no_clock_and_does_no_io() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for entry in fs::read_dir(&src).expect("read src") {
        let path = entry.expect("an entry").path();
        let text = fs::read_to_string(&path).expect("read a source file");
        for word in FORBIDDEN_TEXT {
            assert!(!text.contains(word), "{} uses {word}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} files under src");
}
