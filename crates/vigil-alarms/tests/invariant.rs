//! The invariants the crates state in their Cargo.toml, checked on the resolved dependency graph:
//! none of `vigil-alarms`, `vigil-contract`, `vigil-schedule` and `vigil-report` reaches, through any chain of
//! normal dependencies, a crate that does storage, networking, async I/O or windows; and the
//! engine (`vigil-core`) never reaches the simulator or the embedded broker (`vigil-sim`).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

const FORBIDDEN: [&str; 6] = [
    "rusqlite",
    "rumqttc",
    "rumqttd",
    "tokio",
    "tauri",
    "notify-rust",
];

/// The platform this runs on, as cargo names it (the graph is resolved for it alone: other
/// platforms' crates are not downloaded, so this needs no network).
fn host() -> String {
    let out = Command::new(env!("CARGO"))
        .arg("-vV")
        .output()
        .expect("run cargo -vV");
    let text = String::from_utf8(out.stdout).expect("cargo -vV prints UTF-8");
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("cargo -vV names the host")
        .to_string()
}

/// Package id → (name, ids of its normal dependencies), from `cargo metadata`.
fn graph() -> BTreeMap<String, (String, Vec<String>)> {
    let host = host();
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let names: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().expect("id"),
                p["name"].as_str().expect("name"),
            )
        })
        .collect();
    meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
        .iter()
        .map(|n| {
            let id = n["id"].as_str().expect("node id");
            let deps = n["deps"]
                .as_array()
                .expect("deps")
                .iter()
                .filter(|d| {
                    d["dep_kinds"].as_array().is_some_and(|k| {
                        k.iter().any(|k| k["kind"].is_null()) // null kind: a normal dependency
                    })
                })
                .map(|d| d["pkg"].as_str().expect("pkg").to_string())
                .collect();
            (id.to_string(), (names[id].to_string(), deps))
        })
        .collect()
}

/// The names of every crate `name` depends on, directly or not (normal dependencies).
fn closure(g: &BTreeMap<String, (String, Vec<String>)>, name: &str) -> BTreeSet<String> {
    let root = g
        .iter()
        .find(|(_, (n, _))| n == name)
        .map(|(id, _)| id.clone());
    let mut todo: Vec<String> = root.into_iter().collect();
    assert!(!todo.is_empty(), "{name} is not in the workspace graph");
    let mut seen = BTreeSet::new();
    while let Some(id) = todo.pop() {
        if seen.insert(id.clone()) {
            todo.extend(g[&id].1.iter().cloned());
        }
    }
    seen.iter().map(|id| g[id].0.clone()).collect()
}

#[test]
fn pure_crates_reach_no_io_crate() {
    let g = graph();
    for krate in [
        "vigil-contract",
        "vigil-alarms",
        "vigil-schedule",
        "vigil-report",
    ] {
        let deps = closure(&g, krate);
        let bad: Vec<&str> = FORBIDDEN
            .iter()
            .copied()
            .filter(|f| deps.contains(*f))
            .collect();
        assert!(bad.is_empty(), "{krate} depends on {bad:?}");
    }
    // The check sees the graph: the engine, which does all of that, does reach them.
    let core = closure(&g, "vigil-core");
    for f in [
        "rusqlite",
        "rumqttc",
        "tokio",
        "vigil-alarms",
        "vigil-contract",
        "vigil-schedule",
        "vigil-report",
    ] {
        assert!(core.contains(f), "vigil-core should depend on {f}");
    }
}

#[test]
fn the_engine_reaches_no_simulator() {
    let g = graph();
    let core = closure(&g, "vigil-core");
    for f in ["vigil-sim", "rumqttd"] {
        assert!(!core.contains(f), "vigil-core depends on {f}");
    }
    // The faces do start it.
    assert!(closure(&g, "vigilctl").contains("vigil-sim"));
}
