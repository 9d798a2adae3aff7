//! One line on stderr per connection and per query: who, from where, how long, how many
//! rows, and how it ended. Lines are `key=value` pairs (values quoted when they hold
//! spaces) so a log collector can split them; query text is cut short and kept on one line.

use std::net::SocketAddr;
use std::time::Instant;

use super::functions::Session;

/// At most this much of a query's text is logged.
const SQL_SHOWN: usize = 200;

fn quoted(value: &str) -> String {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '=')
    {
        value.to_string()
    } else {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn one_line(sql: &str) -> String {
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(SQL_SHOWN) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

pub fn listening(address: SocketAddr, store: &str, auth: &str, tls: bool) {
    eprintln!(
        "runql serve: listening on {address} store={} auth={auth} tls={}",
        quoted(store),
        if tls { "on" } else { "off" }
    );
}

pub fn connected(peer: SocketAddr, user: &str, pid: i32, application: &str, tls: bool) {
    eprintln!(
        "connection pid={pid} peer={peer} user={} application={} tls={}",
        quoted(user),
        quoted(application),
        if tls { "on" } else { "off" }
    );
}

pub fn disconnected(peer: SocketAddr, seconds: f64) {
    eprintln!("disconnection peer={peer} seconds={seconds:.3}");
}

/// A connection turned away before it could run anything.
pub fn refused(peer: SocketAddr, user: Option<&str>, reason: &dyn std::fmt::Display) {
    eprintln!(
        "refused peer={peer} user={} reason={}",
        quoted(user.unwrap_or("")),
        quoted(&reason.to_string())
    );
}

pub fn stopping(connections: usize) {
    eprintln!("runql serve: stopping; {connections} connection(s) open");
}

/// A query's line, written when it ends (or fails, or is dropped unread).
pub struct Query {
    pid: i32,
    user: String,
    sql: String,
    started: Instant,
    pub rows: u64,
}

impl Query {
    pub fn new(session: &Session, sql: &str, started: Instant) -> Query {
        Query {
            pid: session.pid,
            user: session.user.clone(),
            sql: one_line(sql),
            started,
            rows: 0,
        }
    }

    fn write(&self, status: &str) {
        eprintln!(
            "query pid={} user={} ms={:.1} rows={} status={} sql={}",
            self.pid,
            quoted(&self.user),
            self.started.elapsed().as_secs_f64() * 1000.0,
            self.rows,
            quoted(status),
            quoted(&self.sql)
        );
    }

    pub fn finished(self) {
        self.write("ok");
    }

    pub fn failed(self, reason: &str) {
        self.write(&format!("error: {reason}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_need_it_are_quoted_and_sql_stays_one_line() {
        assert_eq!(quoted("alice"), "alice");
        assert_eq!(quoted("a b"), "\"a b\"");
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(one_line("SELECT 1\n  FROM runs"), "SELECT 1 FROM runs");
        assert!(one_line(&"x ".repeat(500)).ends_with("..."));
    }
}
