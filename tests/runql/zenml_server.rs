//! Real ZenML servers for the tests: `zenml[server]` from PyPI under uvicorn, on a free
//! loopback port, serving a copy of a fixture store (`tests/fixtures/zenml-<version>/`).
//!
//! Each release's server lives in its own venv (`~/.cache/runql/venvs/server-<version>`,
//! made by `.ci/run`, or here when missing). `tests/fixtures/zenml_server.py` logs in as the
//! store's `default` user and makes a service account with an API key through the API, as
//! an admin would; runql reads with that key. A watchdog stops the server and removes its
//! folder when the test process ends (or when the test drops a private server).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// Releases the tests serve: one per REST era runql reads (0.84: no run numbers, 0.93:
/// run numbers, 0.98: snapshots).
pub const SERVER_RELEASES: &[&str] = &["0.84.3", "0.93.2", "0.98.0"];

pub struct ZenServer {
    pub version: String,
    pub url: String,
    pub api_key: String,
    /// The `default` user's token, for changing the server in a test (never given to runql).
    pub admin_token: String,
    /// The fixture dir whose store the server serves.
    pub fixture: PathBuf,
    pub base: PathBuf,
    watchdog: std::process::Child,
}

impl Drop for ZenServer {
    fn drop(&mut self) {
        // Only private servers are dropped; the shared ones outlive the tests.
        self.kill();
        let _ = self.watchdog.wait();
    }
}

impl ZenServer {
    /// Stops the server at once (SIGKILL), as a crash or a pulled cable would.
    pub fn kill(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.base.join("server.pid")) {
            let _ = Command::new("kill")
                .args(["-9", pid.trim()])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// What the server has logged so far (uvicorn's access lines among it).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.base.join("server.log")).unwrap_or_default()
    }

    /// The store file the server serves (a copy of the fixture's).
    pub fn store_file(&self) -> PathBuf {
        self.base.join("zenml.db")
    }

    /// A request to the server's API as its admin; the answer's JSON.
    pub fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let script = "import json, sys, urllib.request
url, method, token, body = sys.argv[1:5]
req = urllib.request.Request(url, method=method, data=body.encode() if body else None,
    headers={'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'})
with urllib.request.urlopen(req, timeout=60) as r:
    data = r.read()
print(data.decode() or 'null')";
        let out = Command::new(venv_python(&self.version))
            .args(["-c", script])
            .arg(format!("{}/api/v1{path}", self.url))
            .arg(method)
            .arg(&self.admin_token)
            .arg(body.map(|b| b.to_string()).unwrap_or_default())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{method} {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs `tests/fixtures/server_pipeline.py` against the server: real runs made by
    /// ZenML's client through the REST API.
    pub fn run_pipelines(&self, args: &[&str]) {
        let mut full = vec![fixtures().join("server_pipeline.py").display().to_string()];
        full.extend(args.iter().map(|a| a.to_string()));
        self.client_python(&full);
    }

    /// ZenML's client logs `{key: value}` on a finished run, as a user does after the fact.
    pub fn log_run_metadata(&self, run_id: &str, key: &str, value: i64) {
        let code = format!(
            "from zenml import log_metadata; log_metadata(metadata={{'{key}': {value}}}, run_id_name_or_prefix='{run_id}')"
        );
        self.client_python(&["-c".to_string(), code]);
    }

    /// The server venv's Python with ZenML's client logged in to this server.
    fn client_python(&self, args: &[String]) {
        let config = self.base.join("client-config");
        let out = Command::new(venv_python(&self.version))
            .args(args)
            .env("ZENML_CONFIG_PATH", &config)
            .env("ZENML_STORE_URL", &self.url)
            .env("ZENML_STORE_API_KEY", &self.api_key)
            .env("ZENML_ANALYTICS_OPT_IN", "false")
            .env("ZENML_LOGGING_VERBOSITY", "WARN")
            .env("ZENML_ENABLE_RICH_TRACEBACK", "false")
            .current_dir(&self.base)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn venv(version: &str) -> PathBuf {
    let home = std::env::var("HOME").expect("HOME");
    Path::new(&home).join(format!(".cache/runql/venvs/server-{version}"))
}

/// The server venv's Python, made (with `zenml[server]` from PyPI) if missing.
pub fn venv_python(version: &str) -> PathBuf {
    static MAKING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    let venv = venv(version);
    let python = venv.join("bin/python");
    if !venv.join("bin/uvicorn").exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap();
        assert!(made.success(), "cannot make {}", venv.display());
        let installed = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .arg(format!("zenml[server]=={version}"))
            .status()
            .unwrap();
        assert!(
            installed.success(),
            "cannot install zenml[server]=={version}"
        );
    }
    python
}

/// The test process's shared server of `version` (read only by the tests that use it).
pub fn shared(version: &str) -> &'static ZenServer {
    static SERVERS: OnceLock<Mutex<Vec<&'static ZenServer>>> = OnceLock::new();
    let servers = SERVERS.get_or_init(Mutex::default);
    let mut servers = servers.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = servers.iter().find(|s| s.version == version) {
        return s;
    }
    let server: &'static ZenServer = Box::leak(Box::new(start(version)));
    servers.push(server);
    server
}

/// A server of its own for a test that changes it or stops it.
pub fn private(version: &str) -> ZenServer {
    start(version)
}

fn start(version: &str) -> ZenServer {
    let python = venv_python(version);
    let uvicorn = python.with_file_name("uvicorn");
    let fixture = fixtures().join(format!("zenml-{version}"));
    let base = tempfile::Builder::new()
        .prefix(&format!("runql-zenml-server-{version}-"))
        .tempdir()
        .unwrap()
        .keep();
    std::fs::copy(fixture.join("zenml.db"), base.join("zenml.db")).unwrap();
    let port = crate::common::free_port();
    // The server dies with this test process: the watchdog shell waits for the process
    // to end (or the server to die), then stops it and removes its folder.
    let script = format!(
        "cd {base} && ZENML_SERVER=true ZENML_CONFIG_PATH={base}/server-config \
         ZENML_STORE_URL=sqlite:///{base}/zenml.db \
         ZENML_SERVER_JWT_SECRET_KEY=runql-tests-0123456789abcdef0123456789 \
         ZENML_SERVER_AUTO_ACTIVATE=true ZENML_ANALYTICS_OPT_IN=false \
         {uvicorn} zenml.zen_server.zen_server_api:app --host 127.0.0.1 --port {port} \
         >{base}/server.log 2>&1 & m=$!; echo $m > {base}/server.pid; \
         while kill -0 {parent} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 0.5; done; \
         kill $m 2>/dev/null; wait $m; rm -rf {base}",
        base = base.display(),
        uvicorn = uvicorn.display(),
        parent = std::process::id(),
    );
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh runs");
    let url = format!("http://127.0.0.1:{port}");
    let out = Command::new(&python)
        .arg(fixtures().join("zenml_server.py"))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ZenML {version} server did not come up: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(base.join("server.log")).unwrap_or_default()
    );
    let creds: Value = serde_json::from_slice(&out.stdout).unwrap();
    ZenServer {
        version: version.to_string(),
        url,
        api_key: creds["api_key"].as_str().unwrap().to_string(),
        admin_token: creds["admin_token"].as_str().unwrap().to_string(),
        fixture,
        base,
        watchdog,
    }
}
