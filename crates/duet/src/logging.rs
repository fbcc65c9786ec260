//! `serve`'s log (`docs/operations.md`, "Logs"): lines to stdout, filtered by `RUST_LOG` (default
//! `info`), as text for people or as one JSON object a line for machines, with the timestamp, level,
//! target, message, the event's fields at the top level and the current span's (a REST call's
//! `request_id`, a connection's `conn`, `user`, …) under `span`.
//!
//! Lines are not written by the thread that logs them: each is appended to a buffer in memory, which a
//! thread of its own writes to stdout [`FLUSH_EVERY`] after its first line, so a busy server makes one
//! write for many lines instead of one each (docs/benchmarks.md, "Log lines are written in batches, off
//! the logging thread"). A stdout that takes nothing (a reader that stopped) costs lines past
//! [`MAX_PENDING`] bytes, counted and reported in a `log lines dropped` line, never a stalled server.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use duet_server::config::LogFormat;

/// How long a line may wait in memory before it is written.
const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// The most bytes of lines held waiting; lines beyond are dropped (and counted).
const MAX_PENDING: usize = 8 << 20;

/// Sets up the log. Dropping the guard writes what is left.
pub fn init(format: LogFormat) -> Flusher {
    let flusher = Flusher::start(std::io::stdout);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let lines = tracing_subscriber::fmt().with_env_filter(filter).with_writer(flusher.pending.clone());
    match format {
        LogFormat::Text => lines.with_ansi(std::io::stdout().is_terminal()).init(),
        LogFormat::Json => lines.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
    flusher
}

/// Lines waiting to be written.
#[derive(Default)]
struct Pending {
    state: Mutex<State>,
    /// Wakes the writer: lines came when there were none, or the end.
    wake: Condvar,
}

#[derive(Default)]
struct State {
    lines: Vec<u8>,
    /// Lines dropped since the last write.
    dropped: u64,
    /// No writer (any more): lines go straight to stdout.
    done: bool,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writer thread: waits for a line, lets more come for [`FLUSH_EVERY`], writes them all to `sink`
    /// at once; at the end, writes what is left.
    fn write_out<W: Write>(&self, sink: impl Fn() -> W) {
        let mut out = Vec::new();
        loop {
            let done = self.lock().done;
            if !done {
                let idle = |s: &mut State| s.lines.is_empty() && s.dropped == 0 && !s.done;
                drop(self.wake.wait_while(self.lock(), idle).unwrap_or_else(|e| e.into_inner()));
                std::thread::sleep(FLUSH_EVERY);
            }
            let dropped = {
                let mut state = self.lock();
                std::mem::swap(&mut out, &mut state.lines);
                std::mem::take(&mut state.dropped)
            };
            if !out.is_empty() {
                let mut sink = sink();
                let _ = sink.write_all(&out).and_then(|()| sink.flush());
                out.clear();
            }
            if dropped > 0 {
                // A line like the others (JSON with --log-format json), in the next write.
                tracing::warn!(dropped, "log lines dropped: stdout did not take them in time");
            }
            if done {
                return;
            }
        }
    }
}

impl Write for &Pending {
    /// Called once per line, with the whole line.
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut state = self.lock();
        if state.done {
            drop(state);
            return std::io::stdout().write_all(line).map(|()| line.len());
        }
        let first = state.lines.is_empty();
        if state.lines.len() + line.len() <= MAX_PENDING {
            state.lines.extend_from_slice(line);
        } else {
            state.dropped += 1;
        }
        drop(state);
        if first {
            self.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Ends the writer thread when dropped, once it has written what is left; later lines go straight to
/// stdout.
pub struct Flusher {
    pending: Arc<Pending>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    /// Starts the writer thread, writing to what `sink` gives. Without it (the thread could not be
    /// started), lines go straight to stdout.
    fn start<W: Write>(sink: impl Fn() -> W + Send + 'static) -> Flusher {
        let pending = Arc::new(Pending::default());
        let writer = {
            let pending = pending.clone();
            std::thread::Builder::new().name("duet-log".into()).spawn(move || pending.write_out(sink))
        };
        pending.lock().done = writer.is_err();
        Flusher { pending, writer: writer.ok() }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.pending.lock().done = true;
        self.pending.wake.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test reads.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_reach_the_sink_in_order_and_the_last_ones_when_the_guard_drops() {
        let sink = Sink::default();
        let flusher = Flusher::start({
            let sink = sink.clone();
            move || sink.clone()
        });
        let mut writer = &*flusher.pending;
        writer.write_all(b"one\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.0.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the first line was not written");
            std::thread::yield_now();
        }
        for line in [&b"two\n"[..], b"three\n"] {
            writer.write_all(line).unwrap();
        }
        drop(flusher);
        assert_eq!(String::from_utf8(sink.0.lock().unwrap().clone()).unwrap(), "one\ntwo\nthree\n");
    }

    #[test]
    fn lines_past_the_limit_are_dropped_and_counted() {
        let pending = Pending::default();
        let line = vec![b'x'; 1 << 20];
        for _ in 0..MAX_PENDING / line.len() + 3 {
            (&pending).write_all(&line).unwrap();
        }
        let state = pending.lock();
        assert_eq!((state.lines.len(), state.dropped), (MAX_PENDING, 3));
    }
}
