//! `--mirror` on a local store: answers equal the live store's after real ZenML writes runs,
//! deletes one and changes runs again and again; an unchanged store is not read.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::*;

/// A copy of the fixture store with a mirror folder of its own.
struct Mirrored {
    dir: tempfile::TempDir,
    store: PathBuf,
}

impl Mirrored {
    fn new() -> Self {
        let (dir, store) = fixture_copy();
        Self { dir, store }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// Rows of `sql`, read live (`mirror` false) or through the mirror, in a stable order.
    fn rows(&self, sql: &str, mirror: bool) -> Vec<String> {
        let mut cmd = runql();
        cmd.env("RUNQL_CACHE_DIR", self.cache())
            .arg("--store")
            .arg(&self.store)
            .args(["--format", "json", "-c", sql]);
        if mirror {
            cmd.arg("--mirror");
        }
        let rows = json_rows(&cmd.output().unwrap(), sql);
        let mut keys: Vec<String> = rows.iter().map(Value::to_string).collect();
        keys.sort();
        keys
    }

    /// Every table read through the mirror equals the same table read live.
    fn assert_equal(&self, after: &str) {
        for table in TABLES {
            let sql = format!("SELECT * FROM {table}");
            let mirrored = self.rows(&sql, true);
            assert_eq!(
                mirrored,
                self.rows(&sql, false),
                "{table} through the mirror differs from the store {after}"
            );
        }
    }

    /// The mirror's folder.
    fn folder(&self) -> PathBuf {
        let mirrors: Vec<PathBuf> = std::fs::read_dir(self.cache().join("mirrors"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(mirrors.len(), 1, "one mirror per store: {mirrors:?}");
        mirrors.into_iter().next().unwrap()
    }

    /// The mirror's manifest.
    fn manifest(&self) -> Value {
        let text = std::fs::read_to_string(self.folder().join("manifest.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// ZenML 0.98's own Python, with the store as its store (`ZENML_STORE_URL`).
    fn zenml(&self, args: &[&str]) -> String {
        let out = Command::new(crate::zenml_server::venv_python(ZENML_VERSION))
            .args(args)
            .env(
                "ZENML_STORE_URL",
                format!("sqlite:///{}", self.store.display()),
            )
            .env("ZENML_CONFIG_PATH", self.dir.path().join("zenml-config"))
            .env("ZENML_ANALYTICS_OPT_IN", "false")
            .env("ZENML_LOGGING_VERBOSITY", "WARN")
            .env("ZENML_ENABLE_RICH_TRACEBACK", "false")
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn a_store_mirror_answers_as_the_store_after_real_runs_and_a_deletion() {
    let m = Mirrored::new();
    m.assert_equal("when first filled");
    assert!(m.manifest().get("changes").is_none());

    // Nothing written since: the store is not read, the mirror not rewritten.
    let before = m.manifest();
    assert_eq!(m.rows("SELECT count(*) AS n FROM runs", true).len(), 1);
    assert_eq!(
        m.manifest()["exported_at"],
        before["exported_at"],
        "an unchanged store was synced again"
    );

    // ZenML runs the pipeline twice, tagged: appended as one change set.
    let script = fixtures().join("server_pipeline.py");
    let new_runs = m.zenml(&[script.to_str().unwrap(), "2", "mirrored"]);
    let new_runs: Vec<&str> = new_runs.lines().filter(|l| l.len() == 36).collect();
    assert_eq!(new_runs.len(), 2, "{new_runs:?}");
    m.assert_equal("after two new runs");
    let manifest = m.manifest();
    let changes = manifest["changes"].as_array().expect("a change set");
    assert_eq!(changes.len(), 1, "{manifest}");
    let listed: Vec<&str> = changes[0]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        new_runs.iter().all(|r| listed.contains(r)),
        "{listed:?} lacks {new_runs:?}"
    );
    // Their outputs are read from the change set.
    let sql = format!(
        "SELECT output_value(o.output_id) AS v FROM outputs o \
         WHERE o.run_id = '{}' AND o.output_name = 'output'",
        new_runs[1]
    );
    let values = m.rows(&sql, true);
    assert!(!values.is_empty(), "no outputs of the new run");
    assert_eq!(values, m.rows(&sql, false));

    // ZenML deletes a run: the mirror is written whole again, without it.
    m.zenml(&[
        "-c",
        &format!(
            "from zenml.client import Client; Client().delete_pipeline_run('{}')",
            new_runs[0]
        ),
    ]);
    m.assert_equal("after a deletion");
    assert!(m.manifest().get("changes").is_none());
    assert_eq!(
        m.rows(
            &format!("SELECT run_id FROM runs WHERE run_id = '{}'", new_runs[0]),
            true
        )
        .len(),
        0
    );
}

/// Change sets are merged into one past sixteen, and the answers stay the store's.
#[test]
fn many_small_syncs_merge_their_change_sets() {
    let m = Mirrored::new();
    m.assert_equal("when first filled");
    let run_ids: Vec<String> = m
        .rows("SELECT run_id FROM runs", false)
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(r).unwrap()["run_id"]
                .as_str()
                .unwrap()
                .replace('-', "")
        })
        .collect();
    let mut most = 0;
    for i in 0..18 {
        // As when ZenML updates a run: its `updated` moves on.
        let writer = rusqlite::Connection::open(&m.store).unwrap();
        writer
            .execute(
                "UPDATE pipeline_run SET updated = ?1 WHERE id = ?2",
                rusqlite::params![
                    format!("2030-01-01 00:00:{i:02}.000000"),
                    run_ids[i % run_ids.len()]
                ],
            )
            .unwrap();
        drop(writer);
        assert_eq!(m.rows("SELECT 1 AS one", true).len(), 1);
        let sets = m.manifest()["changes"].as_array().map_or(0, Vec::len);
        most = most.max(sets);
        assert!((1..=16).contains(&sets), "{sets} change sets after {i}");
    }
    assert_eq!(most, 16);
    assert!(m.manifest()["changes"].as_array().unwrap().len() < 16);
    m.assert_equal("after 18 syncs");

    // The columns each part records give the schema its footers would: a mirror read
    // without them (as an older runql wrote it) has the same columns, types and rows.
    // (Nullability is left out: recorded columns are all nullable, as the contract's are.)
    let as_read = || -> Vec<Vec<String>> {
        TABLES
            .iter()
            .flat_map(|t| {
                let columns = m.rows(&format!("DESCRIBE {t}"), true).into_iter().map(|c| {
                    let c: Value = serde_json::from_str(&c).unwrap();
                    format!("{} {}", c["column_name"], c["data_type"])
                });
                [
                    columns.collect(),
                    m.rows(&format!("SELECT * FROM {t}"), true),
                ]
            })
            .collect()
    };
    let recorded = as_read();
    forget_recorded_columns(&m.folder());
    assert_eq!(as_read(), recorded);
}

#[test]
fn offline_and_info_read_the_mirror_as_it_is() {
    let m = Mirrored::new();
    let offline = runql()
        .env("RUNQL_CACHE_DIR", m.cache())
        .arg("--store")
        .arg(&m.store)
        .args(["--mirror", "--offline", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert_eq!(offline.status.code(), Some(1));
    let err = String::from_utf8_lossy(&offline.stderr);
    assert!(
        err.contains("no mirror of") && err.lines().count() == 1,
        "{err}"
    );

    m.assert_equal("when first filled");
    let info = stdout_ok(
        runql()
            .env("RUNQL_CACHE_DIR", m.cache())
            .arg("--store")
            .arg(&m.store)
            .args(["--mirror", "--info"]),
    );
    let runs = golden_rows("runs").len();
    assert!(info.contains(&format!("{runs} runs")), "{info}");
    assert!(info.contains("change sets: 0"), "{info}");
}

/// In the REPL, the mirror is brought up to date before each statement.
#[test]
fn the_repl_sees_a_change_made_while_it_runs() {
    let m = Mirrored::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/repl/pty_session.py");
    let query = "SELECT status FROM runs WHERE run_name = 'first-custom';\r";
    let steps = serde_json::json!([
        {"expect": "runql> "},
        {"send": query},
        {"expect": "| completed |"},
        {"expect": "runql> "},
        // As when ZenML updates the run: its status and `updated` change.
        {"write": {
            "db": m.store.display().to_string(),
            "sql": "UPDATE pipeline_run SET status = 'failed', updated = '2030-01-01 00:00:00.000000' \
                    WHERE name = 'first-custom'"
        }},
        {"send": query},
        {"expect": "| failed "},
        {"expect": "runql> "},
        {"send": "\\q\r"}
    ]);
    let out = runql_command_in_pty(&script, &steps, &m);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(m.manifest()["changes"].as_array().map_or(0, Vec::len), 1);
}

fn runql_command_in_pty(script: &Path, steps: &Value, m: &Mirrored) -> std::process::Output {
    Command::new("python3")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_runql"))
        .arg(steps.to_string())
        .arg("--")
        .arg("--store")
        .arg(&m.store)
        .arg("--mirror")
        .arg("--no-history")
        .env("RUNQL_CACHE_DIR", m.cache())
        .env("HOME", m.dir.path())
        .output()
        .unwrap()
}

/// A mirror counts, dates and numbers a store's pipelines over its own runs only for eras
/// whose mapping counts them by `pipeline_id` over the `runs` rows: for every fixture store
/// of such an era, that SQL over the store's own tables gives the store's `pipelines`.
#[test]
fn pipelines_counted_over_the_runs_equal_the_stores_own() {
    let (mut by_id, mut by_name) = (0, 0);
    for dir in all_fixture_dirs() {
        let store = dir.join("zenml.db");
        let mapping = runql::store::ZenStore::open(&store).unwrap().mapping();
        if !mapping.pipelines_count_runs_by_id() {
            by_name += 1;
            continue;
        }
        by_id += 1;
        let counted = runql::export::pipelines_from_runs_over(
            "SELECT pipeline_id, pipeline_name, created, description FROM pipelines",
            "SELECT * FROM runs",
        );
        let differing = query_json_on(
            &store,
            &format!(
                "SELECT count(*) AS n FROM ((SELECT * FROM pipelines EXCEPT {counted}) \
                 UNION ALL ({counted} EXCEPT SELECT * FROM pipelines))"
            ),
        );
        assert_eq!(differing[0]["n"], 0, "{}: {differing:?}", dir.display());
    }
    assert!(
        by_id >= 15 && by_name >= 1,
        "{by_id} by id, {by_name} by name"
    );
}
