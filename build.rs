//! Embeds the demo store's artifact files in the binary: writes `demo_artifacts.rs` into
//! OUT_DIR, a list of `(path under the artifact store, include_bytes!(file))`, so that
//! `--demo` can lay them out beside the demo store and `read_output` works on it.

use std::path::{Path, PathBuf};

const ARTIFACTS: &str = "tests/fixtures/zenml-0.98.0/artifacts";

fn main() {
    let root =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join(ARTIFACTS);
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    let mut code = String::from("&[\n");
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under the root");
        code.push_str(&format!(
            "    ({:?}, include_bytes!({:?})),\n",
            relative.to_str().expect("UTF-8 path"),
            file.to_str().expect("UTF-8 path")
        ));
    }
    code.push_str("]\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out.join("demo_artifacts.rs"), code).expect("write demo_artifacts.rs");
    // A directory here makes cargo rescan everything below it for changes.
    println!("cargo:rerun-if-changed={ARTIFACTS}");
    println!("cargo:rerun-if-changed=build.rs");
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
