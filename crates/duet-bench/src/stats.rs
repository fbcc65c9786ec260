//! Latency histograms (HDR, recorded in nanoseconds, 3 significant digits), their summaries in
//! milliseconds, sharded recorders for many connection tasks, and the progress bar.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Lowest latency told apart: 1 µs.
const LOWEST_NS: u64 = 1_000;
/// Highest latency recorded: 10 minutes (longer ones are clamped).
const HIGHEST_NS: u64 = 600_000_000_000;

pub fn histogram() -> Histogram<u64> {
    // The bounds are valid constants.
    Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, 3).unwrap_or_else(|_| unreachable!("valid bounds"))
}

pub fn record(h: &mut Histogram<u64>, ns: u64) {
    h.saturating_record(ns.max(LOWEST_NS));
}

/// A latency distribution, in milliseconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |ns: u64| round3(ns as f64 / 1e6);
        Latency {
            count: h.len(),
            mean_ms: round3(h.mean() / 1e6),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }

    /// `p50 0.41 / p99 1.20 / p99.9 2.3 / max 5.1 ms`
    pub fn short(&self) -> String {
        if self.count == 0 {
            return "no samples".into();
        }
        format!(
            "p50 {} / p99 {} / p99.9 {} / max {} ms",
            fmt_ms(self.p50_ms),
            fmt_ms(self.p99_ms),
            fmt_ms(self.p999_ms),
            fmt_ms(self.max_ms)
        )
    }
}

pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

pub fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Histograms per step, sharded so that many connection tasks record with little contention.
pub struct Recorder {
    shards: Vec<Mutex<Vec<Histogram<u64>>>>,
}

impl Recorder {
    pub fn new(shards: usize) -> Recorder {
        Recorder { shards: (0..shards.max(1)).map(|_| Mutex::new(Vec::new())).collect() }
    }

    pub fn record(&self, shard: usize, step: u8, ns: u64) {
        let mut hs = self.shards[shard % self.shards.len()].lock().unwrap_or_else(|e| e.into_inner());
        let step = usize::from(step);
        while hs.len() <= step {
            hs.push(histogram());
        }
        record(&mut hs[step], ns);
    }

    /// All shards' samples of `step`, merged.
    pub fn merged(&self, step: u8) -> Histogram<u64> {
        let mut out = histogram();
        for shard in &self.shards {
            let hs = shard.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(h) = hs.get(usize::from(step)) {
                let _ = out.add(h);
            }
        }
        out
    }
}

/// The progress bar on stderr: hidden with `--json` or when stderr is not a terminal.
#[derive(Clone)]
pub struct Progress {
    visible: bool,
}

impl Progress {
    pub fn new(json: bool) -> Progress {
        use std::io::IsTerminal;
        Progress { visible: !json && std::io::stderr().is_terminal() }
    }

    /// A bar counting to `len`.
    pub fn bar(&self, len: u64, what: &str) -> ProgressBar {
        let bar = self.make(Some(len));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(what.to_owned());
        bar
    }

    /// A bar over a span of time, in milliseconds.
    pub fn timed(&self, span: Duration, what: &str) -> ProgressBar {
        let bar = self.make(Some(span.as_millis() as u64));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(what.to_owned());
        bar
    }

    fn make(&self, len: Option<u64>) -> ProgressBar {
        if !self.visible {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// A line above the bars (nothing when hidden).
    pub fn line(&self, text: &str) {
        if self.visible {
            eprintln!("{text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_in_ms() {
        let r = Recorder::new(4);
        for i in 1..=1000u64 {
            r.record(i as usize, 0, i * 1_000_000);
        }
        let l = Latency::of(&r.merged(0));
        assert_eq!(l.count, 1000);
        assert!((l.p50_ms - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.p99_ms - 990.0).abs() < 1.0, "{l:?}");
        assert_eq!(Latency::of(&r.merged(1)).count, 0);
    }
}
