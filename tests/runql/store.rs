//! Opening stores: resolution, read-only access, clean errors for everything that is not a
//! supported ZenML store, and the schema contract in `schemas/`.

use std::sync::Arc;

use crate::common::*;

/// Rewrites the store's `alembic_version`, as a store of another ZenML release would read.
fn claim_version(path: &std::path::Path, version: &str) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute("UPDATE alembic_version SET version_num = ?1", [version])
        .unwrap();
}

/// `runql --store PATH -c "SELECT 1"`.
fn select_one_on(path: &std::path::Path) -> std::process::Output {
    runql()
        .arg("--store")
        .arg(path)
        .args(["-c", "SELECT 1"])
        .output()
        .unwrap()
}

fn assert_store_error(output: &std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains(needle),
        "{needle:?} not in {stderr}"
    );
}

#[test]
fn queries_never_change_the_store() {
    let (_dir, path) = fixture_copy();
    let before = std::fs::read(&path).unwrap();
    for sql in [
        "SELECT * FROM runs",
        "SELECT * FROM steps s JOIN outputs o ON o.step_id = s.step_id",
        "SELECT * FROM metadata",
        "CREATE VIEW v AS SELECT 1",
    ] {
        stdout_ok(runql().arg("--store").arg(&path).args(["-c", sql]));
    }
    let after = std::fs::read(&path).unwrap();
    assert!(before == after, "the store's bytes changed");
    assert!(!path.with_extension("db-journal").exists());
}

#[test]
fn reads_while_zenml_writes() {
    let (_dir, path) = fixture_copy();
    // A writer holds a write transaction (as ZenML does while it records a run).
    let writer = rusqlite::Connection::open(&path).unwrap();
    writer
        .execute_batch("BEGIN IMMEDIATE; UPDATE pipeline SET description = 'changing' WHERE 1;")
        .unwrap();
    let rows = query_json_on(
        &path,
        "SELECT count(*) AS n, max(description) AS d FROM pipelines",
    );
    assert_eq!(rows[0]["n"], golden_rows("pipelines").len());
    assert!(rows[0]["d"].is_null(), "uncommitted writes are not seen");
    writer.execute_batch("COMMIT").unwrap();
    let rows = query_json_on(&path, "SELECT max(description) AS d FROM pipelines");
    assert_eq!(
        rows[0]["d"], "changing",
        "committed writes are seen by the next query"
    );
}

#[test]
fn store_from_zenml_url_env_and_config() {
    let url = format!("sqlite:///{}", fixture_store().display());
    let count = golden_rows("pipelines").len().to_string();
    let pipelines_via = |cmd: &mut std::process::Command| -> String {
        let args = [
            "--format",
            "csv",
            "--no-header",
            "-c",
            "SELECT count(*) FROM pipelines",
        ];
        stdout_ok(cmd.args(args)).trim().to_string()
    };
    assert_eq!(pipelines_via(runql().args(["--store", &url])), count);

    assert_eq!(
        pipelines_via(runql().env("RUNQL_STORE", fixture_store())),
        count
    );

    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.yaml"),
        format!("user_id: x\nstore:\n  url: {url}\n  type: sql\n"),
    )
    .unwrap();
    assert_eq!(
        pipelines_via(runql().env("ZENML_CONFIG_PATH", config.path())),
        count
    );
}

#[test]
fn no_store_says_how_to_point_at_one() {
    let output = runql().args(["-c", "SELECT 1"]).output().unwrap();
    assert_store_error(&output, "--store");
}

#[test]
fn missing_store() {
    let output = runql()
        .args(["--store", "/nonexistent/zenml.db", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert_store_error(&output, "not found: /nonexistent/zenml.db");
}

#[test]
fn corrupt_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zenml.db");
    std::fs::write(
        &path,
        b"this is not a database, just bytes that happen to be here....".repeat(100),
    )
    .unwrap();
    let output = select_one_on(&path);
    assert_store_error(&output, "not a SQLite database");
}

#[test]
fn sqlite_but_not_zenml() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let output = select_one_on(&path);
    assert_store_error(&output, "no alembic_version table");
}

#[test]
fn unknown_schema_version() {
    // The oldest release with a fixture is the oldest runql reads.
    let oldest = all_fixture_dirs()
        .iter()
        .map(|d| {
            d.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .trim_start_matches("zenml-")
                .to_string()
        })
        .min_by_key(|v| {
            v.split('.')
                .map(|n| n.parse::<u32>().unwrap())
                .collect::<Vec<_>>()
        })
        .unwrap();
    let too_old = format!(
        "ZenML schema version 0.12.0 is not supported: runql reads stores of ZenML {oldest} and later"
    );
    for (version, needle) in [
        ("0.12.0", too_old.as_str()),
        (
            "f3b3964e3a0f",
            "ZenML schema version f3b3964e3a0f is not supported",
        ),
    ] {
        let (_dir, path) = fixture_copy();
        claim_version(&path, version);
        let output = select_one_on(&path);
        assert_store_error(&output, needle);
        assert!(
            String::from_utf8_lossy(&output.stderr)
                .contains(&runql::store::schema::supported_versions().join(", "))
        );
    }
}

#[test]
fn newer_store_is_read_with_a_warning() {
    let (_dir, path) = fixture_copy();
    claim_version(&path, "0.99.0");
    let output = runql()
        .arg("--store")
        .arg(&path)
        .args([
            "--format",
            "csv",
            "--no-header",
            "-c",
            "SELECT count(*) FROM runs",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("warning: ZenML schema version 0.99.0 is untested"),
        "{stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        golden_rows("runs").len().to_string()
    );
}

#[test]
fn info_names_version_and_mapping() {
    let out = runql_fixture().arg("--info").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("zenml schema version: {ZENML_VERSION}")),
        "{text}"
    );
    assert!(text.contains("mapping: "), "{text}");
}

#[test]
fn live_schemas_match_schemas_dir() {
    let store = Arc::new(runql::store::ZenStore::open(fixture_store()).unwrap());
    let ctx = runql::session(store, Default::default()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for def in runql::tables::TABLES {
        let provider = runtime.block_on(ctx.table_provider(def.name)).unwrap();
        let live: Vec<(String, String)> = provider
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect();
        let contract: Vec<(String, String)> = def
            .contract_columns()
            .into_iter()
            .map(|c| {
                let kind = runql::tables::Kind::from_name(&c.kind)
                    .unwrap_or_else(|| panic!("schemas/{}.md: unknown type {}", def.name, c.kind));
                (c.name, kind.data_type().to_string())
            })
            .collect();
        assert_eq!(
            live, contract,
            "schemas/{}.md drifted from the live table",
            def.name
        );
        for c in def.contract_columns() {
            assert!(
                !c.meaning.is_empty() && !c.source.is_empty(),
                "schemas/{}.md: {} needs a meaning and a source",
                def.name,
                c.name
            );
        }
    }
}

#[test]
fn zenml_internals_are_not_exposed() {
    let rows = query_json(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'zenml' ORDER BY table_name",
    );
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["table_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "inputs",
            "metadata",
            "outputs",
            "pipelines",
            "runs",
            "steps"
        ]
    );
}

#[test]
fn a_schema_unlike_its_mapping_is_named_not_dumped() {
    // A 0.90 store that claims to be newer than any release runql knows: read with the
    // newest mapping, whose columns it lacks.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zenml.db");
    let older = fixture_dir()
        .parent()
        .unwrap()
        .join("zenml-0.90.0/zenml.db");
    std::fs::copy(older, &path).unwrap();
    claim_version(&path, "0.99.0");
    let output = runql()
        .arg("--store")
        .arg(&path)
        .args(["-c", "SELECT run_index FROM runs"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .expect("an error line");
    assert!(
        error.contains("does not have what runql's") && error.contains("no such column"),
        "{error}"
    );
    assert!(
        !error.contains("SELECT"),
        "no generated SQL in the message: {error}"
    );
}

#[test]
fn every_fixture_release_is_listed_as_verified() {
    // A fixture proves its release: `--info` must say so, and name a mapping.
    for dir in all_fixture_dirs() {
        let info = stdout_ok(
            runql()
                .arg("--store")
                .arg(dir.join("zenml.db"))
                .arg("--info"),
        );
        assert!(
            info.contains("this release: verified"),
            "{}: {info}",
            dir.display()
        );
    }
}

/// A store cut short or with pages overwritten (a broken copy, a full disk): every table
/// either reads or fails with one clean line; never a panic, never a hang.
#[test]
fn truncated_or_damaged_stores_fail_cleanly() {
    let bytes = std::fs::read(fixture_store()).unwrap();
    let page = 4096;
    let pages = bytes.len() / page;
    let mut damaged: Vec<(String, Vec<u8>)> = Vec::new();
    for keep in [100, pages / 3, pages / 2, pages - 1] {
        damaged.push((
            format!("cut to {keep} pages"),
            bytes[..keep * page].to_vec(),
        ));
    }
    // Pages overwritten with a fixed pseudo-random pattern, page 1 (the schema) spared.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for round in 0..6 {
        let mut copy = bytes.clone();
        for _ in 0..(1 + round * 3) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = 1 + (state as usize) % (pages - 1);
            for (i, b) in copy[at * page..(at + 1) * page].iter_mut().enumerate() {
                *b = (state >> (i % 56)) as u8;
            }
        }
        damaged.push((
            format!("{} pages overwritten (round {round})", 1 + round * 3),
            copy,
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    for (what, content) in damaged {
        let path = dir.path().join("zenml.db");
        std::fs::write(&path, &content).unwrap();
        for table in TABLES {
            let mut child = runql()
                .arg("--store")
                .arg(&path)
                .args(["--format", "csv", "-c"])
                .arg(format!("SELECT * FROM {table}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("{what}: SELECT * FROM {table} hangs");
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            };
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            assert!(
                !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
                "{what}: {table}: {stderr}"
            );
            if !status.success() {
                assert_eq!(status.code(), Some(1), "{what}: {table}: {stderr}");
                assert_eq!(stderr.lines().count(), 1, "{what}: {table}: {stderr}");
                assert!(stderr.starts_with("error: "), "{what}: {table}: {stderr}");
            }
        }
    }
}
