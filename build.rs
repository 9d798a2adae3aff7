//! Embeds the demo store's artifact files in the binary: writes `demo_artifacts.rs` into
//! OUT_DIR, a list of `(path under the artifact store, include_bytes!(file))`, so that
//! `--demo` can lay them out beside the demo store and `read_output` works on it.

use std::path::{Path, PathBuf};

const ARTIFACTS: &str = "tests/fixtures/zenml-0.98.0/artifacts";
const STORE: &str = "tests/fixtures/zenml-0.98.0/zenml.db";

fn main() {
    let root =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join(ARTIFACTS);
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    let mut code = String::from("&[\n");
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under the root");
        // The path is made when runql compiles, from the checkout compiling it: a target
        // dir shared by two checkouts (CI's clone and a developer's) keeps this file from the
        // first, and an absolute path here would read the other checkout's files.
        let relative = relative.to_str().expect("UTF-8 path");
        code.push_str(&format!(
            "    ({relative:?}, include_bytes!(concat!(env!(\"CARGO_MANIFEST_DIR\"), {:?}))),\n",
            format!("/{ARTIFACTS}/{relative}")
        ));
    }
    code.push_str("]\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out.join("demo_artifacts.rs"), code).expect("write demo_artifacts.rs");

    // The demo's folder is named by a hash of its bytes, computed here once rather than by
    // every `runql --demo` (hashing 1.6 MB was a fifth of a `SELECT 1`'s instructions).
    let mut hash = Fnv(0xcbf2_9ce4_8422_2325);
    hash.add(&std::fs::read(root.parent().expect("fixture dir").join("zenml.db")).expect("store"));
    for file in &files {
        hash.add(
            file.strip_prefix(&root)
                .expect("under the root")
                .to_string_lossy()
                .as_bytes(),
        );
        hash.add(&std::fs::read(file).expect("artifact"));
    }
    println!("cargo:rustc-env=RUNQL_DEMO_HASH={:016x}", hash.0);
    // A directory here makes cargo rescan everything below it for changes.
    println!("cargo:rerun-if-changed={ARTIFACTS}");
    println!("cargo:rerun-if-changed={STORE}");
    println!("cargo:rerun-if-changed=build.rs");
}

/// FNV-1a, 64 bits: stable across builds and toolchains, unlike std's hasher.
struct Fnv(u64);

impl Fnv {
    fn add(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}
