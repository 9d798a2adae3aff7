//! A ZenML server as a store: real `zenml[server]` releases serving the fixture stores
//! (`zenml_server.rs`), read by runql through the REST API into its mirror.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common::*;
use crate::zenml_server::{SERVER_RELEASES, ZenServer, private, shared};

/// `runql --store <server>` with the server's API key and a mirror folder of the test's.
fn runql_on(server: &ZenServer, cache: &Path) -> std::process::Command {
    let mut cmd = runql();
    cmd.args(["--store", &server.url])
        .env("ZENML_STORE_API_KEY", &server.api_key)
        .env("RUNQL_CACHE_DIR", cache);
    cmd
}

fn rows_on(server: &ZenServer, cache: &Path, sql: &str) -> Vec<Value> {
    rows_with(server, cache, &[], sql)
}

/// The rows of `sql` read through the server's mirror, with more of runql's flags.
fn rows_with(server: &ZenServer, cache: &Path, flags: &[&str], sql: &str) -> Vec<Value> {
    let out = runql_on(server, cache)
        .args(flags)
        .args(["--format", "json", "-c", sql])
        .output()
        .unwrap();
    json_rows(&out, &format!("{} {flags:?} {sql}", server.version))
}

/// Columns the REST API does not give (see `store::rest::rows`), and JSON-text columns,
/// compared as JSON values (the API keeps values, not key order or spacing).
fn comparable(table: &str) -> (&'static str, &'static [&'static str]) {
    match table {
        "runs" => ("*", &["parameters", "config", "exception"]),
        "steps" => ("* EXCEPT (config)", &["parameters", "exception"]),
        "metadata" => (
            "* EXCEPT (value_type, publisher_step_id, created)",
            &["value"],
        ),
        _ => ("*", &[]),
    }
}

fn keyed(rows: Vec<Value>, json_columns: &[&str]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for mut row in rows {
        for c in json_columns {
            row[*c] = json_text(&row[*c]);
        }
        // ZenML's server fills in a run configuration's `substitutions` (date and time) as
        // its client shows them, where a store of some releases (0.84) keeps `{}`.
        if let Some(config) = row.get_mut("config").and_then(Value::as_object_mut) {
            config.remove("substitutions");
        }
        let key = row.to_string();
        *out.entry(key).or_insert(Value::Null) = row;
    }
    out
}

fn assert_same_rows(what: &str, ours: Vec<Value>, theirs: Vec<Value>, json_columns: &[&str]) {
    let (n, m) = (ours.len(), theirs.len());
    let ours = keyed(ours, json_columns);
    let theirs = keyed(theirs, json_columns);
    let only_ours: Vec<_> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    let only_theirs: Vec<_> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    assert!(
        n == m && only_ours.is_empty() && only_theirs.is_empty(),
        "{what}: {n} vs {m} rows\nonly in the first: {only_ours:#?}\nonly in the second: {only_theirs:#?}"
    );
}

#[test]
fn every_table_on_a_server_equals_zenmls_client() {
    for version in SERVER_RELEASES {
        let server = shared(version);
        let cache = tempfile::tempdir().unwrap();
        let golden = golden_of(&server.fixture);
        for (table, key, fields) in crate::golden::GOLDEN_COLUMNS {
            let sql = if *table == "runs" {
                "SELECT *, json_get_str(config, 'name') AS config_name FROM runs".to_string()
            } else {
                format!("SELECT * FROM {table}")
            };
            let ours = rows_on(server, cache.path(), &sql);
            crate::golden::assert_rows_match(
                &format!("{version} server {table}"),
                golden["tables"][*table].as_array().unwrap(),
                &ours,
                key,
                fields,
                &["parameters", "value"],
            );
        }
    }
}

#[test]
fn a_server_answers_as_its_store_file_does() {
    for version in SERVER_RELEASES {
        let server = shared(version);
        let cache = tempfile::tempdir().unwrap();
        let store = server.fixture.join("zenml.db");
        for table in TABLES {
            let (select, json_columns) = comparable(table);
            let sql = format!("SELECT {select} FROM {table}");
            assert_same_rows(
                &format!("{version} {table}: server, then file"),
                rows_on(server, cache.path(), &sql),
                query_json_on(&store, &sql),
                json_columns,
            );
        }
        // The named reports, as a user runs them.
        let mut answered = 0;
        for args in [
            vec!["pipelines"],
            vec!["cache_hit_rate"],
            vec!["config_changes"],
            vec!["latest_run", "--param", "pipeline=first_pipeline"],
            vec!["pipeline_runs", "--param", "pipeline=first_pipeline"],
            vec!["run_steps", "--param", "pipeline=first_pipeline"],
            vec![
                "step_outputs",
                "--param",
                "pipeline=first_pipeline",
                "--param",
                "step=step_1",
            ],
            vec!["latest_outputs", "--param", "pipeline=first_pipeline"],
        ] {
            let via_server = runql_on(server, cache.path())
                .args(["--offline", "--format", "json", "query"])
                .args(&args)
                .output()
                .unwrap();
            let via_file = runql()
                .arg("--store")
                .arg(&store)
                .args(["--format", "json", "query"])
                .args(&args)
                .output()
                .unwrap();
            let what = format!("{version} report {args:?}");
            let ours = json_rows(&via_server, &what);
            answered += usize::from(!ours.is_empty());
            assert_same_rows(&what, ours, json_rows(&via_file, &what), &[]);
        }
        assert!(answered >= 6, "{version}: only {answered} reports had rows");
    }
}

/// Every table of two mirrors, compared row for row.
fn assert_mirrors_equal(server: &ZenServer, a: &Path, b: &Path) {
    for table in TABLES {
        let sql = format!("SELECT * FROM {table}");
        let read = |cache: &Path| rows_with(server, cache, &["--offline"], &sql);
        assert_same_rows(
            &format!("{table}: synced mirror, then a fresh read"),
            read(a),
            read(b),
            &[],
        );
    }
}

fn count(server: &ZenServer, cache: &Path, sql: &str) -> i64 {
    rows_on(server, cache, sql)[0]["n"].as_i64().unwrap()
}

#[test]
fn a_sync_brings_new_changed_and_deleted_runs_exactly() {
    let server = private("0.98.0");
    let mirror = tempfile::tempdir().unwrap();
    let runs_before = count(&server, mirror.path(), "SELECT count(*) AS n FROM runs");
    assert_eq!(runs_before, 7);

    // A sync with nothing new rewrites no table; only the manifest's time moves.
    let folder = only_mirror(mirror.path());
    let tables_of = |snap: BTreeMap<String, Vec<u8>>| {
        snap.into_iter()
            .filter(|(name, _)| name != "manifest.json")
            .collect::<BTreeMap<_, _>>()
    };
    let before = snapshot(&folder);
    let checked_at = |folder: &Path| {
        let m: Value =
            serde_json::from_slice(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
        m["exported_at"].as_str().unwrap().to_string()
    };
    let first_check = checked_at(&folder);
    assert_eq!(
        count(&server, mirror.path(), "SELECT count(*) AS n FROM runs"),
        7
    );
    assert_eq!(tables_of(snapshot(&folder)), tables_of(before));
    assert_ne!(
        checked_at(&folder),
        first_check,
        "the manifest says when it was checked"
    );

    // New runs made by ZenML's client through the API, one of them tagged; a fixture run
    // deleted through the API.
    server.run_pipelines(&["2", "synced"]);
    // Added runs alone are appended (the newest run the mirror had, read again, is left
    // as it was), and the mirror equals a fresh fill.
    assert_eq!(
        count(&server, mirror.path(), "SELECT count(*) AS n FROM runs"),
        9
    );
    let filled = tempfile::tempdir().unwrap();
    rows_on(&server, filled.path(), "SELECT 1");
    assert_mirrors_equal(&server, mirror.path(), filled.path());
    let gone = rows_on(
        &server,
        mirror.path(),
        "SELECT run_id FROM runs WHERE run_name = 'data-nightly-001'",
    )[0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    server.admin("DELETE", &format!("/runs/{gone}"), None);

    let after = rows_on(
        &server,
        mirror.path(),
        "SELECT count(*) AS n, count(*) FILTER (WHERE array_has(tags, 'synced')) AS tagged, \
                count(*) FILTER (WHERE run_name = 'data-nightly-001') AS deleted FROM runs",
    );
    assert_eq!(after[0]["n"], 8, "{after:?}");
    assert_eq!(after[0]["tagged"], 2, "{after:?}");
    assert_eq!(after[0]["deleted"], 0, "{after:?}");
    let steps_of_gone = count(
        &server,
        mirror.path(),
        &format!("SELECT count(*) AS n FROM steps WHERE run_id = '{gone}'"),
    );
    assert_eq!(steps_of_gone, 0);

    let fresh = tempfile::tempdir().unwrap();
    rows_on(&server, fresh.path(), "SELECT 1");
    assert_mirrors_equal(&server, mirror.path(), fresh.path());
    // The new runs' pipeline, counted and numbered with the rest.
    let pipeline = rows_on(
        &server,
        mirror.path(),
        "SELECT run_count, pipeline_index FROM pipelines WHERE pipeline_name = 'server_pipeline'",
    );
    assert_eq!(pipeline[0]["run_count"], 2, "{pipeline:?}");

    // Metadata logged on a finished run afterwards does not move the run's `updated`: a
    // sync cannot see it (the README says so), --full-sync reads it.
    let late = "SELECT count(*) AS n FROM metadata WHERE key = 'late_metric'";
    server.log_run_metadata(&finished_run(&server, mirror.path()), "late_metric", 7);
    assert_eq!(count(&server, mirror.path(), late), 0);
    let full = rows_with(&server, mirror.path(), &["--full-sync"], late);
    assert_eq!(full[0]["n"], 1);
}

/// A finished fixture run still on the server.
fn finished_run(server: &ZenServer, cache: &Path) -> String {
    rows_on(
        server,
        cache,
        "SELECT run_id FROM runs WHERE run_name = 'first-custom'",
    )[0]["run_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The one mirror folder under a cache dir.
fn only_mirror(cache: &Path) -> std::path::PathBuf {
    let mut dirs: Vec<_> = std::fs::read_dir(cache.join("mirrors"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

/// Every file of a folder with its bytes, to show a failed sync changed nothing.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != ".lock") {
                out.insert(
                    path.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    out
}

fn assert_one_line_failure(out: &Output, expected: &str, secret: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    assert!(!stderr.contains(secret), "the key leaked: {stderr}");
    assert!(out.stdout.is_empty());
}

/// `sql` with `key` in place of the server's: one line saying the key was refused.
fn assert_refused_with_key(server: &ZenServer, cache: &Path, key: &str, sql: &str) {
    let out = runql_on(server, cache)
        .env("ZENML_STORE_API_KEY", key)
        .args(["-c", sql])
        .output()
        .unwrap();
    assert_one_line_failure(&out, "refused", key);
}

#[test]
fn faults_are_one_line_and_leave_the_mirror_as_it_was() {
    let server = private("0.98.0");
    let cache = tempfile::tempdir().unwrap();
    rows_on(&server, cache.path(), "SELECT 1");
    let mirror = only_mirror(cache.path());
    let before = snapshot(&mirror);

    // A wrong key: refused, nothing written.
    let wrong = "ZENKEY_not-a-real-key-4f1d";
    assert_refused_with_key(&server, cache.path(), wrong, "SELECT count(*) FROM runs");
    assert_eq!(
        snapshot(&mirror),
        before,
        "a refused sync changed the mirror"
    );

    // The server gone: a clean error after bounded retries, the mirror intact and still
    // readable offline.
    server.kill();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    let out = runql_on(&server, cache.path())
        .args(["-c", "SELECT count(*) FROM runs"])
        .output()
        .unwrap();
    assert_one_line_failure(&out, "cannot connect", &server.api_key);
    assert!(started.elapsed().as_secs() < 30, "retries are bounded");
    assert_mirror_as_it_was(&server, cache.path(), &mirror, &before);
}

/// A failed sync left the mirror byte for byte as it was, and it still answers offline.
fn assert_mirror_as_it_was(
    server: &ZenServer,
    cache: &Path,
    mirror: &Path,
    before: &BTreeMap<String, Vec<u8>>,
) {
    assert_eq!(
        &snapshot(mirror),
        before,
        "a failed sync changed the mirror"
    );
    let offline = rows_with(
        server,
        cache,
        &["--offline"],
        "SELECT count(*) AS n FROM runs",
    );
    assert_eq!(
        offline[0]["n"], 7,
        "the mirror as the last good sync left it"
    );
}

/// Runs a sync of `server` in the background and, as soon as the server has answered its
/// first list of runs (the fill is under way: the steps, artifact versions and pipelines are
/// still to come), does `fault` to it. runql is held still (SIGSTOP) while the fault is
/// made, so that it lands between two of runql's requests whatever the machine's speed.
/// Returns runql's output.
fn fault_in_the_middle_of_a_sync(
    server: &ZenServer,
    cache: &Path,
    fault: impl FnOnce(&ZenServer),
) -> Output {
    let logged_before = server.log().len();
    let mut child = runql_on(server, cache)
        .env("RUNQL_SERVER_TIMEOUT", "5")
        .args(["-c", "SELECT count(*) FROM runs"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let runs_answered = |log: &str| {
        log.get(logged_before..)
            .is_some_and(|l| l.contains("GET /api/v1/runs?") && l.contains(" 200"))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while !runs_answered(&server.log()) {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "runql ended ({status}) before the server listed runs: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(std::time::Instant::now() < deadline, "no runs were listed");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let signal = |name: &str| {
        let sent = std::process::Command::new("kill")
            .args([name, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    signal("-STOP");
    fault(server);
    signal("-CONT");
    child.wait_with_output().unwrap()
}

#[test]
fn a_server_killed_in_the_middle_of_a_first_fill_leaves_no_mirror() {
    let server = private("0.98.0");
    let cache = tempfile::tempdir().unwrap();
    let out = fault_in_the_middle_of_a_sync(&server, cache.path(), ZenServer::kill);
    assert_one_line_failure(&out, "cannot connect", &server.api_key);
    // Nothing half-read stands as a mirror: no manifest, no staging folder left behind
    // (only the lock and the login kept for the next process).
    let folder = only_mirror(cache.path());
    let left: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != ".lock" && name != ".session")
        .collect();
    assert!(left.is_empty(), "an interrupted fill left {left:?}");
    let offline = runql_on(&server, cache.path())
        .args(["--offline", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert_one_line_failure(&offline, "no mirror", &server.api_key);
}

#[test]
fn a_server_error_in_the_middle_of_a_sync_leaves_the_mirror_as_it_was() {
    let server = private("0.98.0");
    let cache = tempfile::tempdir().unwrap();
    assert_eq!(
        count(&server, cache.path(), "SELECT count(*) AS n FROM runs"),
        7
    );
    // A new run for the next sync to bring, so a half-done sync would show in the files.
    server.run_pipelines(&["1"]);
    let mirror = only_mirror(cache.path());
    let before = snapshot(&mirror);
    // The server's database loses tables under it (a botched migration, a restore gone
    // wrong): every list after the runs answers 500, as a real ZenML server does.
    let out = fault_in_the_middle_of_a_sync(&server, cache.path(), |server| {
        let broken = std::process::Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys\n\
                 db = sqlite3.connect(sys.argv[1], timeout=30)\n\
                 db.execute('ALTER TABLE artifact_version RENAME TO artifact_version_gone')\n\
                 db.execute('ALTER TABLE pipeline RENAME TO pipeline_gone')\n\
                 db.commit()",
            ])
            .arg(server.store_file())
            .status()
            .unwrap();
        assert!(broken.success());
    });
    assert_one_line_failure(&out, "HTTP 500", &server.api_key);
    assert!(
        server.log().contains(" 500"),
        "the server answered no 500: {}",
        server.log()
    );
    assert_mirror_as_it_was(&server, cache.path(), &mirror, &before);
}

#[test]
fn offline_without_a_mirror_says_so() {
    let server = shared("0.98.0");
    let cache = tempfile::tempdir().unwrap();
    let out = runql_on(server, cache.path())
        .args(["--offline", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert_one_line_failure(&out, "no mirror", &server.api_key);
    assert!(!cache.path().join("mirrors").exists() || snapshot(cache.path()).is_empty());
}

#[test]
fn the_api_key_is_never_shown_or_stored() {
    let server = shared("0.98.0");
    let cache = tempfile::tempdir().unwrap();
    let key = &server.api_key;
    for args in [
        vec!["--info"],
        vec!["-c", "\\store"],
        vec![
            "-c",
            "EXPLAIN VERBOSE SELECT * FROM runs WHERE status = 'failed'",
        ],
        vec!["-c", "SELECT * FROM no_such_table"],
    ] {
        let out = runql_on(server, cache.path()).args(&args).output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(key.as_str()), "{args:?} shows the key: {all}");
    }
    // A key file works, and its key is not echoed when it is wrong.
    let file = cache.path().join("key");
    std::fs::write(&file, format!("{key}\n")).unwrap();
    let out = runql()
        .args(["--store", &server.url, "--api-key-file"])
        .arg(&file)
        .env("RUNQL_CACHE_DIR", cache.path())
        .args(["--format", "json", "-c", "SELECT count(*) AS n FROM runs"])
        .output()
        .unwrap();
    assert_eq!(json_rows(&out, "--api-key-file")[0]["n"], 7);
    // Nothing in the mirror holds the key; the mirror is the user's alone.
    let mirror = only_mirror(cache.path());
    for (name, bytes) in snapshot(&mirror) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(key.as_str()), "{name} holds the key");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&mirror).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "mirror folder mode {mode:o}");
}

#[test]
fn a_login_is_kept_for_the_next_process_until_the_key_is_revoked() {
    let server = private("0.98.0");
    let cache = tempfile::tempdir().unwrap();
    let logins = |server: &ZenServer| server.log().matches("POST /api/v1/login").count();
    let before = logins(&server);
    for _ in 0..3 {
        assert_eq!(
            count(&server, cache.path(), "SELECT count(*) AS n FROM runs"),
            7
        );
    }
    // ZenML verifies a key at /login in most of a second: three processes, one login.
    assert_eq!(logins(&server) - before, 1, "{}", server.log());
    let session = only_mirror(cache.path()).join(".session");
    let kept = std::fs::read_to_string(&session).unwrap();
    assert!(
        !kept.contains(server.api_key.as_str()),
        "the kept session holds the key"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&session).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "session file mode {mode:o}");

    // Another key of the same server logs in for itself and leaves the kept token be.
    let other = "ZENKEY_not-a-real-key-91aa";
    assert_refused_with_key(&server, cache.path(), other, "SELECT 1");
    assert_eq!(std::fs::read_to_string(&session).unwrap(), kept);

    // The key deleted on the server: the kept token ends with it.
    let accounts = server.admin("GET", "/service_accounts", None);
    for account in accounts["items"].as_array().unwrap() {
        let id = account["id"].as_str().unwrap();
        let keys = server.admin("GET", &format!("/service_accounts/{id}/api_keys"), None);
        for key in keys["items"].as_array().unwrap() {
            let key_id = key["id"].as_str().unwrap();
            server.admin(
                "DELETE",
                &format!("/service_accounts/{id}/api_keys/{key_id}"),
                None,
            );
        }
    }
    let out = runql_on(&server, cache.path())
        .args(["-c", "SELECT count(*) FROM runs"])
        .output()
        .unwrap();
    assert_one_line_failure(&out, "refused", &server.api_key);
    assert!(!session.exists(), "a refused token is not kept");
}

#[test]
fn a_client_logged_in_with_zenml_login_needs_no_flags() {
    let server = shared("0.98.0");
    let cache = tempfile::tempdir().unwrap();
    let config = cache.path().join("zenml-config");
    // ZenML's own `zenml login` writes config.yaml and credentials.yaml.
    let login = std::process::Command::new(
        crate::zenml_server::venv_python("0.98.0").with_file_name("zenml"),
    )
    .args(["login", &server.url, "--api-key"])
    .env("ZENML_CONFIG_PATH", &config)
    .env("ZENML_ANALYTICS_OPT_IN", "false")
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let login = {
        use std::io::Write;
        let mut login = login;
        writeln!(login.stdin.take().unwrap(), "{}", server.api_key).unwrap();
        login.wait_with_output().unwrap()
    };
    assert!(
        login.status.success(),
        "zenml login: {}{}",
        String::from_utf8_lossy(&login.stdout),
        String::from_utf8_lossy(&login.stderr)
    );
    let out = runql()
        .env("ZENML_CONFIG_PATH", &config)
        .env("RUNQL_CACHE_DIR", cache.path())
        .args(["--format", "json", "-c", "SELECT count(*) AS n FROM runs"])
        .output()
        .unwrap();
    assert_eq!(json_rows(&out, "logged in")[0]["n"], 7);
}

#[test]
fn export_reads_a_server() {
    let server = shared("0.98.0");
    let cache = tempfile::tempdir().unwrap();
    let to = cache.path().join("export");
    let out = runql_on(server, cache.path())
        .arg("export")
        .arg("--to")
        .arg(&to)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = query_json_on(&to, "SELECT count(*) AS n FROM steps");
    let file = query_json_on(
        &server.fixture.join("zenml.db"),
        "SELECT count(*) AS n FROM steps",
    );
    assert_eq!(rows, file);
}

/// A real HTTP server that is not ZenML (Python's `http.server`) serving `dir` on a free
/// loopback port; stopped when dropped.
struct NotZenml {
    url: String,
    child: std::process::Child,
}

impl Drop for NotZenml {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python_http_server(dir: &Path) -> NotZenml {
    let port = free_port();
    let child = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "http.server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    NotZenml {
        url: format!("http://127.0.0.1:{port}"),
        child,
    }
}

#[test]
fn servers_that_answer_wrongly_are_one_line_errors() {
    let key = "ZENKEY_never-shown-7c2e";
    let run = |url: &str, cache: &Path, timeout: &str| {
        runql()
            .args(["--store", url, "-c", "SELECT 1"])
            .env("ZENML_STORE_API_KEY", key)
            .env("RUNQL_CACHE_DIR", cache)
            .env("RUNQL_SERVER_TIMEOUT", timeout)
            .output()
            .unwrap()
    };
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();

    // Not a ZenML server: no /api/v1/info.
    let web = python_http_server(site.path());
    assert_one_line_failure(&run(&web.url, cache.path(), "10"), "HTTP 404", key);

    // A page that is not JSON where the API's answer should be (a proxy's error page).
    std::fs::create_dir_all(site.path().join("api/v1")).unwrap();
    std::fs::write(site.path().join("api/v1/info"), "<html>maintenance</html>").unwrap();
    assert_one_line_failure(&run(&web.url, cache.path(), "10"), "not JSON", key);

    // 5xx answers (this server answers a login POST with 501): retried, then given up.
    std::fs::write(site.path().join("api/v1/info"), r#"{"version": "0.98.0"}"#).unwrap();
    assert_one_line_failure(&run(&web.url, cache.path(), "10"), "HTTP 501", key);

    // A server that accepts the connection and never answers: bounded by the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let started = std::time::Instant::now();
    assert_one_line_failure(&run(&url, cache.path(), "1"), "timed out", key);
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());

    // A server release runql does not read.
    std::fs::write(site.path().join("api/v1/info"), r#"{"version": "0.60.0"}"#).unwrap();
    assert_one_line_failure(&run(&web.url, cache.path(), "10"), "ZenML 0.60.0", key);

    // None of them left a mirror behind.
    let mirrors = cache.path().join("mirrors");
    for entry in std::fs::read_dir(&mirrors).into_iter().flatten() {
        let dir = entry.unwrap().path();
        assert!(!dir.join("manifest.json").exists(), "{}", dir.display());
    }
}

/// The differential search between a server's mirror and the store file behind the server:
/// generated queries (filters, sorts with limits, joins, TLP) over every column the API
/// gives as the file holds it (`comparable`), on each release's server.
#[test]
fn a_mirror_answers_generated_queries_as_the_store_file_does() {
    let queries = crate::differential::env_number("RUNQL_DIFF_QUERIES", 200) as usize;
    let seed = crate::differential::env_number("RUNQL_DIFF_SEED", 20261208);
    let runtime = crate::differential::runtime();
    let mut failures = Vec::new();
    for (i, version) in SERVER_RELEASES.iter().enumerate() {
        let server = shared(version);
        let cache = tempfile::tempdir().unwrap();
        // The first use fills the mirror.
        assert_eq!(rows_on(server, cache.path(), "SELECT 1 AS one").len(), 1);
        let mirror = only_mirror(cache.path());
        let store = std::sync::Arc::new(
            runql::store::ZenStore::open(server.fixture.join("zenml.db")).unwrap(),
        );
        let compared = |table: &str, column: &str| {
            let (select, json_columns) = comparable(table);
            !json_columns.contains(&column)
                && !select.split_once("EXCEPT (").is_some_and(|(_, except)| {
                    except
                        .trim_end_matches(')')
                        .split(", ")
                        .any(|c| c == column)
                })
        };
        failures.extend(runtime.block_on(async {
            let file = runql::session(store, runql::artifacts::ArtifactRoot::default()).unwrap();
            let (mirrored, _) =
                runql::export_session(&mirror, runql::artifacts::ArtifactRoot::default())
                    .await
                    .unwrap();
            crate::differential::sessions_agree(
                (&file, "store file"),
                (&mirrored, "mirror"),
                &format!("{version} mirror"),
                queries,
                seed + i as u64,
                &compared,
            )
            .await
        }));
    }
    crate::differential::assert_none_differ(&failures, queries * SERVER_RELEASES.len());
}
