//! The progress line a mirror fill shows on a terminal: what is being read, how much of
//! it, the rate and the time left. Nothing is shown when stderr is not a terminal.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::mirror::Progress;

/// Redraws at most this often: a terminal redrawn per page would slow the fill.
const REDRAW: Duration = Duration::from_millis(200);

pub struct Display {
    on: bool,
    started: Instant,
    what: String,
    what_started: Instant,
    last_draw: Option<Instant>,
    drawn: bool,
}

impl Display {
    pub fn new(on: bool) -> Self {
        Self {
            on,
            started: Instant::now(),
            what: String::new(),
            what_started: Instant::now(),
            last_draw: None,
            drawn: false,
        }
    }

    pub fn show(&mut self, p: Progress<'_>) {
        if !self.on {
            return;
        }
        if p.what != self.what {
            self.what = p.what.to_string();
            self.what_started = Instant::now();
            self.last_draw = None;
        }
        let now = Instant::now();
        if self.last_draw.is_some_and(|t| now - t < REDRAW) && p.done < p.total {
            return;
        }
        self.last_draw = Some(now);
        let elapsed = (now - self.what_started).as_secs_f64().max(1e-3);
        let rate = p.done as f64 / elapsed;
        let line = if p.total == 0 && p.done == 0 {
            format!("syncing mirror: writing {}", p.what)
        } else if p.total > 0 {
            let left = p.total.saturating_sub(p.done) as f64 / rate.max(1e-9);
            format!(
                "syncing mirror: {} {}/{} ({:.0}/s, {} left)",
                p.what,
                p.done,
                p.total,
                rate,
                clock(left)
            )
        } else {
            format!("syncing mirror: {} {} ({:.0}/s)", p.what, p.done, rate)
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[K[{}] {line}",
            clock(self.started.elapsed().as_secs_f64())
        );
        let _ = err.flush();
        self.drawn = true;
    }

    /// Clears the line, so results start on a clean one.
    pub fn finish(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

fn clock(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}
