//! Secrets stay secret: a store into which real ZenML planted a secret, a service account's
//! API key and a user's password (`tests/fixtures/make_secrets_store.sh`) is read through
//! every table, command, catalog view, function and export runql has; none of what was
//! planted, nor the store's encoded secret values and password or key hashes, comes out.

use std::path::{Path, PathBuf};

use crate::common::*;

fn secrets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/secrets-0.62.0")
}

/// The planted values, and what the store keeps of them (encoded values, hashes).
fn forbidden() -> Vec<String> {
    let planted: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(secrets_dir().join("planted.json")).unwrap())
            .unwrap();
    let mut values: Vec<String> = planted["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let conn = rusqlite::Connection::open_with_flags(
        secrets_dir().join("zenml.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    for sql in [
        "SELECT \"values\" FROM secret",
        "SELECT \"key\" FROM api_key",
        "SELECT password FROM user WHERE password IS NOT NULL",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        // Text or BLOB, as the release wrote it.
        let rows = stmt
            .query_map([], |r| {
                Ok(match r.get_ref(0)? {
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        String::from_utf8_lossy(t).to_string()
                    }
                    other => format!("{other:?}"),
                })
            })
            .unwrap();
        values.extend(rows.map(Result::unwrap));
    }
    // Long enough to be found only where they leaked (hash prefixes included).
    values.retain(|v| v.len() >= 16);
    assert!(values.len() >= 7, "planted and stored secrets: {values:?}");
    values
}

#[test]
fn no_table_command_function_or_export_shows_a_secret() {
    let store = secrets_dir().join("zenml.db");
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut run = |args: &[&str]| {
        let output = runql()
            .arg("--store")
            .arg(&store)
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        outputs.push((args.join(" "), text));
        output.status.success()
    };
    for table in TABLES {
        assert!(run(&[
            "--format",
            "json",
            "-c",
            &format!("SELECT * FROM {table}")
        ]));
        assert!(run(&["-c", &format!("\\d {table}")]));
    }
    assert!(run(&["-c", "\\d"]));
    assert!(run(&["-c", "\\store"]));
    assert!(run(&["--info"]));
    assert!(run(&[
        "--format",
        "json",
        "-c",
        "SELECT * FROM information_schema.columns"
    ]));
    // What is not a runql table is not there, and saying so shows nothing of it.
    assert!(!run(&["-c", "SELECT * FROM secret"]));
    assert!(!run(&["-c", "SELECT * FROM zenml.api_key"]));
    let secret_id = {
        let conn = rusqlite::Connection::open_with_flags(
            &store,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        conn.query_row("SELECT id FROM secret", [], |r| r.get::<_, String>(0))
            .unwrap()
    };
    assert!(!run(&[
        "-c",
        &format!("SELECT * FROM read_output('{secret_id}')")
    ]));
    assert!(!run(&[
        "-c",
        &format!("SELECT output_value('{secret_id}')")
    ]));

    // An export, its files and what reads back from it.
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("history");
    let export_arg = export.display().to_string();
    assert!(run(&["export", "--to", &export_arg]));
    for table in TABLES {
        let output = runql()
            .args(["--store", &export_arg, "--format", "json", "-c"])
            .arg(format!("SELECT * FROM {table}"))
            .output()
            .unwrap();
        assert!(output.status.success());
        outputs.push((
            format!("export {table}"),
            String::from_utf8_lossy(&output.stdout).to_string(),
        ));
    }
    let mut files = vec![export.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            outputs.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).to_string(),
            ));
        }
    }

    let forbidden = forbidden();
    for (what, text) in &outputs {
        for value in &forbidden {
            assert!(
                !text.contains(value.as_str()),
                "{what} shows a planted secret ({}...)",
                &value[..8]
            );
        }
    }
    // The store held real runs: the search looked at real output.
    assert!(outputs.iter().any(|(_, t)| t.contains("first_pipeline")));
}
