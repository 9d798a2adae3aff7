//! A real MariaDB server for the tests (Debian's `mariadb-server`), started once per test
//! process on a free loopback port with a temporary data dir, holding the MySQL fixture
//! stores (`tests/fixtures/mysql-<version>/zenml.sql`, written by real ZenML with
//! `make_mysql_store.sh`).
//!
//! Each fixture is loaded as database `zenml_<version>` (dots as underscores). runql logs in
//! as `runql_reader`, which has `SELECT` on exactly the tables `runql --grants` names for
//! that store's era, as the README tells a DBA to give. A watchdog stops the server and
//! removes its data dir when the test process ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The reader's password (a test server on loopback; still never printed by runql).
pub const READER_PASSWORD: &str = "reader-Pw-7f3a";

pub struct MariaDb {
    pub port: u16,
    pub socket: PathBuf,
    /// `ca.pem` (the CA of the server's and the client's certificates), `server.pem`,
    /// `client.pem`, `client.key`: the server offers TLS with these.
    pub tls: PathBuf,
    /// (fixture dir, database name).
    pub stores: Vec<(PathBuf, String)>,
    /// The shell that stops the server when the test process ends (never waited for: it
    /// outlives every test).
    _watchdog: std::process::Child,
}

impl MariaDb {
    /// `mysql://runql_reader:<password>@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "mysql://runql_reader:{READER_PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// The same without the password (it comes from elsewhere).
    pub fn url_without_password(&self, database: &str) -> String {
        format!("mysql://runql_reader@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs SQL as root through the socket; panics on failure.
    pub fn root_sql(&self, database: Option<&str>, sql: &str) -> String {
        let mut cmd = Command::new("mariadb");
        cmd.args(["--no-defaults", "-N", "-B", "-uroot"])
            .arg(format!("--socket={}", self.socket.display()));
        if let Some(db) = database {
            cmd.arg(db);
        }
        let out = cmd
            .arg("-e")
            .arg(sql)
            .output()
            .expect("mariadb client runs");
        assert!(
            out.status.success(),
            "mariadb -e {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Creates `database` and loads the fixture dump of `dir` into it.
    pub fn load(&self, dir: &Path, database: &str) {
        self.root_sql(None, &format!("CREATE DATABASE {database}"));
        let dump = std::fs::File::open(dir.join("zenml.sql")).unwrap();
        let load = Command::new("mariadb")
            .args(["--no-defaults", "-uroot"])
            .arg(format!("--socket={}", self.socket.display()))
            .arg(database)
            .stdin(dump)
            .output()
            .unwrap();
        assert!(
            load.status.success(),
            "loading {}: {}",
            dir.display(),
            String::from_utf8_lossy(&load.stderr)
        );
    }

    /// A checksum of every table of `database`, to show a test changed nothing.
    pub fn checksum(&self, database: &str) -> String {
        let tables = self.root_sql(
            None,
            &format!(
                "SET SESSION group_concat_max_len = 1000000; \
                 SELECT GROUP_CONCAT(CONCAT('`', table_name, '`') ORDER BY table_name) \
                 FROM information_schema.tables WHERE table_schema = '{database}'"
            ),
        );
        self.root_sql(
            Some(database),
            &format!("CHECKSUM TABLE {} EXTENDED", tables.trim()),
        )
    }
}

/// The fixture directories with a MariaDB dump, oldest release first.
pub fn mysql_fixture_dirs() -> Vec<PathBuf> {
    let mut dirs = crate::common::fixture_dirs_holding("zenml.sql");
    dirs.sort_by_key(|d| release_of(d));
    dirs
}

fn release_of(dir: &Path) -> Vec<u32> {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    name.rsplit('-')
        .next()
        .unwrap()
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// The test process's MariaDB, started on first use.
pub fn mariadb() -> &'static MariaDb {
    static SERVER: OnceLock<MariaDb> = OnceLock::new();
    SERVER.get_or_init(start)
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
fn make_certificates(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let script = "set -e
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=runql-test-ca \
          -keyout ca.key -out ca.pem 2>/dev/null
        for who in server client; do
          openssl req -newkey rsa:2048 -nodes -subj /CN=$who -keyout $who.key -out $who.csr 2>/dev/null
          printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > $who.ext
          openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile $who.ext -out $who.pem 2>/dev/null
        done";
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.to_path_buf()
}

fn start() -> MariaDb {
    let base = std::env::temp_dir().join(format!("runql-mariadb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let data = base.join("data");
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    let install = Command::new("mariadb-install-db")
        .args([
            "--no-defaults",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ])
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--user={user}"))
        .output()
        .expect("mariadb-install-db runs (Debian's mariadb-server; .ci/run installs it)");
    assert!(
        install.status.success(),
        "mariadb-install-db: {}",
        String::from_utf8_lossy(&install.stderr)
    );
    let port = crate::common::free_port();
    let socket = base.join("sock");
    // Its own temporary files (sorts, temporary tables) stay in its own folder: in the
    // shared /tmp one vanished under a long differential run ("Error on delete of
    // '/tmp/#sql-temptable-...MAI'").
    let tmp = base.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let tls = make_certificates(&base.join("tls"));
    // The server dies with this test process: a watchdog shell waits for the process to end,
    // then stops the server and removes its data dir.
    let server = format!(
        "/usr/sbin/mariadbd --no-defaults --datadir={data} --port={port} --bind-address=127.0.0.1 \
         --socket={socket} --pid-file={base}/pid --user={user} --skip-log-bin --tmpdir={tmp} \
         --innodb-buffer-pool-size=256M --innodb-log-file-size=96M --innodb-flush-log-at-trx-commit=2 \
         --ssl-ca={tls}/ca.pem --ssl-cert={tls}/server.pem --ssl-key={tls}/server.key \
         >{base}/server.log 2>&1 & m=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 0.5; done; \
         kill $m 2>/dev/null; wait $m; rm -rf {base}",
        data = data.display(),
        socket = socket.display(),
        base = base.display(),
        tls = tls.display(),
        tmp = tmp.display(),
        parent = std::process::id(),
    );
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(server)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "MariaDB did not start: {}",
            std::fs::read_to_string(base.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut server = MariaDb {
        port,
        socket,
        tls,
        stores: Vec::new(),
        _watchdog: watchdog,
    };
    server.root_sql(
        None,
        &format!("CREATE USER 'runql_reader'@'127.0.0.1' IDENTIFIED BY '{READER_PASSWORD}'"),
    );
    // Readers that must come over TLS, and with a client certificate.
    server.root_sql(
        None,
        &format!(
            "CREATE USER 'tls_reader'@'127.0.0.1' IDENTIFIED BY '{READER_PASSWORD}' REQUIRE SSL; \
             CREATE USER 'x509_reader'@'127.0.0.1' IDENTIFIED BY '{READER_PASSWORD}' REQUIRE X509; \
             GRANT SELECT ON *.* TO 'tls_reader'@'127.0.0.1'; \
             GRANT SELECT ON *.* TO 'x509_reader'@'127.0.0.1'"
        ),
    );
    for dir in mysql_fixture_dirs() {
        let version = dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace("mysql-", "");
        let database = format!("zenml_{}", version.replace('.', "_"));
        server.load(&dir, &database);
        // Exactly the grants runql says it needs for this store.
        let grants = crate::common::runql()
            .args(["--store", &server.root_url(&database), "--grants"])
            .output()
            .unwrap();
        assert!(
            grants.status.success(),
            "runql --grants: {}",
            String::from_utf8_lossy(&grants.stderr)
        );
        let grants = String::from_utf8(grants.stdout)
            .unwrap()
            .replace("'<user>'@'<host>'", "'runql_reader'@'127.0.0.1'");
        server.root_sql(Some(&database), &grants);
        server.stores.push((dir, database));
    }
    server
}

impl MariaDb {
    /// root over TCP, for `runql --grants` (which only reads the store's version).
    fn root_url(&self, database: &str) -> String {
        self.root_sql(
            None,
            "CREATE USER IF NOT EXISTS 'grants'@'127.0.0.1' IDENTIFIED BY 'grants-pw'; \
             GRANT SELECT ON *.* TO 'grants'@'127.0.0.1'",
        );
        format!(
            "mysql://grants:grants-pw@127.0.0.1:{}/{database}",
            self.port
        )
    }
}
