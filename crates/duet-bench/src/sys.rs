//! What the bench reads from the operating system: a process's CPU time (`/proc/PID/stat`, utime +
//! stime of all its threads) and resident memory (`/proc/PID/status` VmRSS), the machine's busy and
//! steal time (`/proc/stat`), the open-files limit, which it raises to the hard limit, and how long the disk
//! takes to sync a small write meanwhile ([`DiskProbe`]).
//!
//! Linux only; elsewhere every sample is `None` and the report leaves those fields out.

use std::sync::OnceLock;
use std::time::Instant;

/// CPU time and memory of one process at one instant.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// utime + stime, seconds.
    pub cpu_s: f64,
    pub rss_bytes: u64,
}

/// Samples process `pid` (`None` for this process). `None` if the process is gone or there is no `/proc`.
pub fn sample(pid: Option<u32>) -> Option<ProcSample> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_owned(),
    };
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the name: state is field 3 (index 0 here); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(ProcSample { cpu_s: (utime + stime) as f64 / clock_ticks(), rss_bytes: rss_kib * 1024 })
}

/// The resident memory of `pid`, bytes.
pub fn rss(pid: Option<u32>) -> Option<u64> {
    sample(pid).map(|s| s.rss_bytes)
}

/// The servers' samples added up (several nodes): `None` without a PID, or if one is gone.
pub fn sample_servers(pids: &[u32]) -> Option<ProcSample> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().try_fold(ProcSample { cpu_s: 0.0, rss_bytes: 0 }, |sum, &p| {
        let s = sample(Some(p))?;
        Some(ProcSample { cpu_s: sum.cpu_s + s.cpu_s, rss_bytes: sum.rss_bytes + s.rss_bytes })
    })
}

/// The servers' resident memory added up, bytes.
pub fn servers_rss(pids: &[u32]) -> Option<u64> {
    sample_servers(pids).map(|s| s.rss_bytes)
}

/// The number of files the servers have open (`/proc/PID/fd`): their sockets, among others.
pub fn open_files(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|p| Some(std::fs::read_dir(format!("/proc/{p}/fd")).ok()?.count() as u64)).sum()
}

/// `sysconf(_SC_CLK_TCK)`, read once through `getconf` (the workspace forbids `unsafe`); Linux's 100 otherwise.
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// (busy, total, steal) jiffies over all CPUs.
fn machine() -> Option<(u64, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    if v.len() < 8 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v[4];
    Some((total - idle, total, v[7]))
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Shortest window whose CPU figures are reported: CPU time is counted in ticks of 10 ms.
const MIN_WINDOW_S: f64 = 0.25;

/// CPU used by the server, the generator and the machine over a window.
pub struct CpuWindow {
    server_pids: Vec<u32>,
    started: Instant,
    server: Option<ProcSample>,
    generator: Option<ProcSample>,
    machine: Option<(u64, u64, u64)>,
}

/// The CPU figures of a finished window.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct CpuUsage {
    pub window_s: f64,
    /// Server CPU in % of one core (200 = two cores busy).
    pub server_cpu_pct: Option<f64>,
    /// Server CPU time in the window, microseconds.
    pub server_cpu_us: Option<f64>,
    /// The load generator's own CPU, % of one core.
    pub gen_cpu_pct: Option<f64>,
    pub gen_cpu_us: Option<f64>,
    /// The whole machine's busy time, % of one core (at most 100 × cores).
    pub machine_busy_pct: Option<f64>,
    pub machine_steal_pct: Option<f64>,
}

impl CpuUsage {
    /// Rounded for the report: 0.1 % and 0.1 µs, ms-precise windows.
    pub fn rounded(mut self) -> CpuUsage {
        let r1 = |v: Option<f64>| v.map(|v| (v * 10.0).round() / 10.0);
        self.window_s = (self.window_s * 1000.0).round() / 1000.0;
        self.server_cpu_pct = r1(self.server_cpu_pct);
        self.server_cpu_us = r1(self.server_cpu_us);
        self.gen_cpu_pct = r1(self.gen_cpu_pct);
        self.gen_cpu_us = r1(self.gen_cpu_us);
        self.machine_busy_pct = r1(self.machine_busy_pct);
        self.machine_steal_pct = r1(self.machine_steal_pct);
        self
    }
}

impl CpuWindow {
    /// Over the servers of `server_pids` (their CPU added up: several nodes) and this generator.
    pub fn start(server_pids: &[u32]) -> CpuWindow {
        CpuWindow {
            server_pids: server_pids.to_vec(),
            started: Instant::now(),
            server: sample_servers(server_pids),
            generator: sample(None),
            machine: machine(),
        }
    }

    /// The figures since [`CpuWindow::start`]; none for a window too short for the kernel's 10 ms ticks.
    pub fn finish(&self) -> CpuUsage {
        let dt = self.started.elapsed().as_secs_f64().max(1e-9);
        if dt < MIN_WINDOW_S {
            return CpuUsage { window_s: dt, ..CpuUsage::default() };
        }
        let server_end = sample_servers(&self.server_pids);
        let gen_end = sample(None);
        let server_us = match (self.server, server_end) {
            (Some(a), Some(b)) => Some((b.cpu_s - a.cpu_s) * 1e6),
            _ => None,
        };
        let gen_us = match (self.generator, gen_end) {
            (Some(a), Some(b)) => Some((b.cpu_s - a.cpu_s) * 1e6),
            _ => None,
        };
        let (busy, steal) = match (self.machine, machine()) {
            (Some((b0, t0, s0)), Some((b1, t1, s1))) if t1 > t0 => {
                let scale = 100.0 * cores() as f64 / (t1 - t0) as f64;
                (Some((b1 - b0) as f64 * scale), Some((s1 - s0) as f64 * scale))
            }
            _ => (None, None),
        };
        CpuUsage {
            window_s: dt,
            server_cpu_pct: server_us.map(|us| us / 1e4 / dt),
            server_cpu_us: server_us,
            gen_cpu_pct: gen_us.map(|us| us / 1e4 / dt),
            gen_cpu_us: gen_us,
            machine_busy_pct: busy,
            machine_steal_pct: steal,
        }
    }
}

/// How long the disk under a directory takes to make a 4 KiB write durable, sampled every
/// [`DiskProbe::EVERY`] on a thread of its own while a step runs. With fsync durability a message is
/// acknowledged only after its group commit is synced, so a step's latency tail can be no better than the
/// disk's: this puts the disk's own stalls (a cloud VM's disk has 100 ms ones at times) beside the step's
/// figures. Twenty small syncs a second add little to what the server writes.
pub struct DiskProbe {
    stop: std::sync::mpsc::Sender<()>,
    result: std::sync::mpsc::Receiver<DiskStats>,
}

/// The probe's figures for one window.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct DiskStats {
    pub disk_fsyncs: u64,
    pub disk_fsync_p50_ms: f64,
    pub disk_fsync_p99_ms: f64,
    pub disk_fsync_max_ms: f64,
}

impl DiskProbe {
    pub const EVERY: std::time::Duration = std::time::Duration::from_millis(50);

    /// Starts probing with a temporary file in `dir`; `None` if the file cannot be created.
    pub fn start(dir: &std::path::Path) -> Option<DiskProbe> {
        let mut file = tempfile::tempfile_in(dir).ok()?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (result_tx, result) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("disk-probe".into())
            .spawn(move || {
                use std::io::{Seek, Write};
                let Ok(mut us) = hdrhistogram::Histogram::<u64>::new(3) else { return };
                let page = [0x5a_u8; 4096];
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(Self::EVERY) {
                    let t = Instant::now();
                    let synced = file.seek(std::io::SeekFrom::Start(0)).is_ok()
                        && file.write_all(&page).is_ok()
                        && file.sync_data().is_ok();
                    if !synced {
                        return;
                    }
                    let _ = us.record(t.elapsed().as_micros() as u64);
                }
                let ms = |q: f64| (us.value_at_quantile(q) as f64 / 100.0).round() / 10.0;
                let _ = result_tx.send(DiskStats {
                    disk_fsyncs: us.len(),
                    disk_fsync_p50_ms: ms(0.5),
                    disk_fsync_p99_ms: ms(0.99),
                    disk_fsync_max_ms: (us.max() as f64 / 100.0).round() / 10.0,
                });
            })
            .ok()?;
        Some(DiskProbe { stop, result })
    }

    /// Stops the probe; `None` if it failed, took no sample, or is stuck in a sync for over a second (the
    /// thread is then left to finish on its own).
    pub fn finish(self) -> Option<DiskStats> {
        drop(self.stop);
        self.result.recv_timeout(std::time::Duration::from_secs(1)).ok().filter(|s| s.disk_fsyncs > 0)
    }
}

/// The open-files limit of this process after trying to raise the soft limit to the hard one.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct NofileLimit {
    pub soft: u64,
    pub hard: u64,
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit. Without `unsafe` there is no
/// `setrlimit` call, so this asks util-linux's `prlimit(1)` to do it for our PID (the `prlimit64` syscall
/// works on another process). Children started later (the server) inherit the raised limit.
pub fn raise_nofile() -> NofileLimit {
    if let Some(now) = nofile()
        && now.soft < now.hard
    {
        let pid = std::process::id();
        let _ = std::process::Command::new("prlimit")
            .arg(format!("--pid={pid}"))
            .arg(format!("--nofile={}:{}", now.hard, now.hard))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    nofile().unwrap_or(NofileLimit { soft: u64::MAX, hard: u64::MAX })
}

fn nofile() -> Option<NofileLimit> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut nums = line["Max open files".len()..]
        .split_whitespace()
        .map(|v| if v == "unlimited" { Some(u64::MAX) } else { v.parse().ok() });
    Some(NofileLimit { soft: nums.next()??, hard: nums.next()?? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_probe_times_syncs_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let probe = DiskProbe::start(dir.path()).expect("a probe file in the directory");
        std::thread::sleep(DiskProbe::EVERY * 4);
        let stats = probe.finish().expect("samples");
        assert!(stats.disk_fsyncs >= 1, "{stats:?}");
        assert!(stats.disk_fsync_max_ms >= stats.disk_fsync_p50_ms, "{stats:?}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the probe file is anonymous");
    }

    #[test]
    fn samples_this_process() {
        let s = sample(None).expect("/proc/self");
        assert!(s.rss_bytes > 0);
        assert!(s.cpu_s >= 0.0);
        let w = CpuWindow::start(&[std::process::id()]);
        assert!(w.finish().server_cpu_us.is_none(), "too short to tell");
        std::thread::sleep(std::time::Duration::from_millis(300));
        let u = w.finish();
        assert!(u.server_cpu_us.is_some() && u.gen_cpu_us.is_some());
        let l = raise_nofile();
        assert!(l.soft > 0 && l.soft <= l.hard);
    }
}
