//! The test binaries of the workspace leave no test file behind.
//!
//! In: every crate's `Cargo.toml` under `crates/`; for those that build
//! their tests as one binary (`autotests = false`, see tests/scenarios.rs),
//! the files in its `tests/` and the modules its root declares.
//! Out: a failure naming each `tests/*.rs` that no root declares. With
//! autotests off, cargo no longer finds such a file by itself: its tests
//! would silently never build or run.

use std::fs;
use std::path::{Path, PathBuf};

/// The root files of the single-binary crates, by crate directory.
fn single_binary_roots(crates: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut roots = Vec::new();
    for entry in fs::read_dir(crates).expect("the crates directory is readable") {
        let dir = entry.expect("a readable directory entry").path();
        let Ok(manifest) = fs::read_to_string(dir.join("Cargo.toml")) else { continue };
        if !manifest.lines().any(|l| l.trim() == "autotests = false") {
            continue;
        }
        let path = manifest
            .lines()
            .find_map(|l| l.trim().strip_prefix("path = \"tests/")?.strip_suffix('"').map(str::to_owned))
            .unwrap_or_else(|| panic!("{}: autotests = false without a [[test]] path", dir.display()));
        roots.push((dir.clone(), dir.join("tests").join(path)));
    }
    roots.sort();
    roots
}

#[test]
fn every_test_file_of_a_single_binary_crate_is_a_module_of_its_root() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let roots = single_binary_roots(&crates);
    assert!(roots.len() >= 9, "found only {} single-binary crates: {roots:?}", roots.len());
    let mut missing = Vec::new();
    for (dir, root) in &roots {
        let text = fs::read_to_string(root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
        let declared: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("mod ")?.strip_suffix(';')).collect();
        for entry in fs::read_dir(dir.join("tests")).expect("tests/ is readable") {
            let file = entry.expect("a readable directory entry").path();
            let Some(stem) = file.file_stem().and_then(|s| s.to_str()) else { continue };
            let is_rust = file.extension().is_some_and(|e| e == "rs");
            if is_rust && file != *root && !declared.contains(&stem) {
                missing.push(file.display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "test files no test binary builds (add `mod <name>;` to their crate's root): {missing:?}"
    );
}
