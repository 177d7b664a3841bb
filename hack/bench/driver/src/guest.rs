//! The benchmark driver that runs inside the VM (hack/bench/run.sh starts it
//! there through hack/vm/run.sh).
//!
//! For each size, in fresh network namespaces:
//! 1. the reference: `ipvsadm -R`, `ipset restore`, `ip -batch` program the
//!    state, `ipvsadm -Sn` reads it back, each timed (run by
//!    [`reference`] inside the namespace, so no `ip netns exec` start-up
//!    is counted);
//! 2. kube-ipvs started on the manifests until its first sync line (the
//!    cold sync), its peak RSS read from `/proc`;
//! 3. one endpoint replaced, ten times, each time waiting for the sync that
//!    applies it and the one that retires the replaced real server;
//! 4. the daemon stopped (the kernel keeps its state) and started again:
//!    its first sync is a full resync that reads everything back and
//!    finds nothing to change;
//! 5. `ipvsadm -Sn` on kube-ipvs's state, then everything torn down.
//!
//! Figures go to `raw.json` in the results directory after every size, so
//! a run cut short keeps what it measured; daemon logs are copied there.

use std::{
    fs,
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    cluster,
    results::{Change, DaemonStart, Machine, Reference, RunResults, SizeResults, ToolRun},
    sync_line::{ipvs_read_ms, is_initial_state_line, SyncLine},
    BenchError, Result,
};

/// Endpoint changes per size.
pub const CHANGES: usize = 10;
const REF_NETNS: &str = "kb-ref";
const KIPVS_NETNS: &str = "kb-kipvs";
/// How often the daemon's log is read while waiting for a line.
const POLL: Duration = Duration::from_millis(20);

pub struct GuestOptions {
    pub sizes: Vec<usize>,
    pub results: PathBuf,
    /// Scratch space inside the guest (manifests, tool inputs, logs).
    pub work: PathBuf,
    pub daemon: PathBuf,
    /// The longest wait for any one sync line.
    pub timeout: Duration,
}

pub fn run(options: &GuestOptions) -> Result<()> {
    let mut results = RunResults {
        machine: machine(&options.daemon),
        sizes: Vec::new(),
    };
    let raw = options.results.join("raw.json");
    for &n in &options.sizes {
        eprintln!("bench: {n} services x {} endpoints", cluster::ENDPOINTS);
        let size = run_size(options, n)?;
        eprintln!(
            "bench: {n}: reference {:.1} s, cold sync {:.1} s ({} ms in the sync), full resync {} ms, peak RSS {} MiB",
            size.reference.programming_s(),
            size.cold.wall_s,
            size.cold.sync.elapsed_ms,
            size.resync.sync.elapsed_ms,
            size.cold.vm_hwm_kib / 1024
        );
        results.sizes.push(size);
        results.write(&raw)?;
    }
    Ok(())
}

fn run_size(options: &GuestOptions, n: usize) -> Result<SizeResults> {
    let work = options.work.join(n.to_string());
    let _ = fs::remove_dir_all(&work);
    let manifests = work.join("manifests");
    fs::create_dir_all(&manifests)?;
    cluster::write_manifests(&manifests, n)?;
    fs::write(work.join("ipvsadm.rules"), cluster::ipvsadm_rules(n))?;
    fs::write(work.join("ipset.restore"), cluster::ipset_restore(n))?;
    fs::write(work.join("ip.batch"), cluster::ip_batch(n))?;

    // 1. The reference, in a namespace of its own.
    let reference = in_fresh_netns(REF_NETNS, || {
        let out = work.join("reference.json");
        let me = std::env::current_exe()?;
        run_checked(
            Command::new("ip")
                .args(["netns", "exec", REF_NETNS])
                .arg(&me)
                .arg("reference")
                .arg("--work")
                .arg(&work)
                .arg("--out")
                .arg(&out),
        )?;
        let reference: Reference =
            serde_json::from_str(&fs::read_to_string(&out)?).map_err(BenchError::json)?;
        let expected = n * (1 + cluster::ENDPOINTS);
        if reference.ipvsadm_save.output_lines != expected {
            return Err(BenchError::Check(format!(
                "reference: ipvsadm -Sn printed {} lines, expected {expected}",
                reference.ipvsadm_save.output_lines
            )));
        }
        Ok(reference)
    })?;

    // 2.-5. kube-ipvs, in another.
    in_fresh_netns(KIPVS_NETNS, || {
        let logs = &options.results;
        let mut daemon = Daemon::start(options, &manifests, &work.join("daemon-1.log"))?;
        let cold = daemon.first_sync(options.timeout)?;
        check_sync("cold sync", &cold.sync, n)?;

        let mut changes = Vec::new();
        for k in 1..=CHANGES {
            cluster::write_changed_slice(&manifests, n, k)?;
            let written = Instant::now();
            let sync = daemon.next_sync(options.timeout)?;
            let wall_ms = written.elapsed().as_secs_f64() * 1000.0;
            if sync.full || sync.failed > 0 {
                return Err(BenchError::Check(format!(
                    "change {k}: unexpected sync {sync:?}"
                )));
            }
            // The replaced real server went to weight 0; its deletion
            // follows within the 5 s counter refresh.
            let retirement = daemon.next_sync(Duration::from_secs(20)).ok();
            changes.push(Change {
                sync,
                wall_ms,
                retirement,
            });
        }
        let vm_hwm_after_changes_kib = daemon.status_kib("VmHWM")?;
        daemon.stop()?;
        fs::copy(
            work.join("daemon-1.log"),
            logs.join(format!("daemon-{n}-first.log")),
        )?;

        let mut again = Daemon::start(options, &manifests, &work.join("daemon-2.log"))?;
        let resync = again.first_sync(options.timeout)?;
        if !resync.sync.full || resync.sync.steps != 0 || resync.sync.failed != 0 {
            return Err(BenchError::Check(format!(
                "full resync after a restart changed something: {:?}",
                resync.sync
            )));
        }
        again.stop()?;
        fs::copy(
            work.join("daemon-2.log"),
            logs.join(format!("daemon-{n}-restart.log")),
        )?;

        let readback = timed_tool(
            Command::new("ip")
                .args(["netns", "exec", KIPVS_NETNS, "ipvsadm", "-Sn"])
                .stdin(Stdio::null()),
        )?;
        Ok(SizeResults {
            services: n,
            endpoints_per_service: cluster::ENDPOINTS,
            reference: reference.clone(),
            cold,
            changes,
            vm_hwm_after_changes_kib,
            resync,
            readback_of_kube_ipvs_state: readback,
        })
    })
}

/// The cold sync must have programmed every service without a failure.
fn check_sync(what: &str, sync: &SyncLine, n: usize) -> Result<()> {
    if !sync.full || sync.failed != 0 || sync.virtual_services != n as u64 {
        return Err(BenchError::Check(format!("{what}: unexpected {sync:?}")));
    }
    Ok(())
}

/// Runs inside the reference namespace: the kernel's tools program the
/// state from the files in `work` and read it back; writes the timings to
/// `out`.
pub fn reference(work: &Path, out: &Path) -> Result<()> {
    run_checked(Command::new("ip").args(["link", "add", "kube-ipvs0", "type", "dummy"]))?;
    let stdin = |name: &str| -> Result<Stdio> { Ok(fs::File::open(work.join(name))?.into()) };
    let reference = Reference {
        ipvsadm_restore: timed_tool(
            Command::new("ipvsadm")
                .arg("-R")
                .stdin(stdin("ipvsadm.rules")?),
        )?,
        ipset_restore: timed_tool(
            Command::new("ipset")
                .arg("restore")
                .stdin(stdin("ipset.restore")?),
        )?,
        ip_batch: timed_tool(Command::new("ip").arg("-batch").arg(work.join("ip.batch")))?,
        ipvsadm_save: timed_tool(Command::new("ipvsadm").arg("-Sn"))?,
    };
    fs::write(
        out,
        serde_json::to_string(&reference).map_err(BenchError::json)?,
    )?;
    Ok(())
}

/// Runs a tool to completion; its time and the lines it printed.
fn timed_tool(command: &mut Command) -> Result<ToolRun> {
    let started = Instant::now();
    let output = command.stderr(Stdio::inherit()).output()?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        return Err(BenchError::Check(format!(
            "{command:?} failed: {}",
            output.status
        )));
    }
    Ok(ToolRun {
        seconds,
        output_lines: output.stdout.iter().filter(|&&b| b == b'\n').count(),
    })
}

fn run_checked(command: &mut Command) -> Result<()> {
    let status = command.status()?;
    if status.success() {
        Ok(())
    } else {
        Err(BenchError::Check(format!("{command:?} failed: {status}")))
    }
}

/// Runs `body` with the namespace `name` freshly made, then empties and
/// deletes it: the big objects are removed first, synchronously, so the
/// kernel's namespace clean-up does not run on into the next measurement.
fn in_fresh_netns<T>(name: &str, body: impl FnOnce() -> Result<T>) -> Result<T> {
    // Left over from a run cut short (absent otherwise).
    let _ = Command::new("ip")
        .args(["netns", "del", name])
        .stderr(Stdio::null())
        .status();
    run_checked(Command::new("ip").args(["netns", "add", name]))?;
    run_checked(Command::new("ip").args(["-n", name, "link", "set", "lo", "up"]))?;
    let outcome = body();
    let exec = |argv: &[&str]| {
        let _ = Command::new("ip")
            .args(["netns", "exec", name])
            .args(argv)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    exec(&["ipvsadm", "-C"]);
    exec(&["nft", "flush", "ruleset"]);
    exec(&["ipset", "destroy"]);
    exec(&["ip", "link", "del", "kube-ipvs0"]);
    let _ = Command::new("ip").args(["netns", "del", name]).status();
    outcome
}

/// A kube-ipvs process in [`KIPVS_NETNS`], its log followed line by line.
struct Daemon {
    /// `ip netns exec`, which execs the daemon: its pid is the daemon's.
    child: Child,
    started: Instant,
    log: PathBuf,
    offset: u64,
    pending: String,
}

impl Daemon {
    fn start(options: &GuestOptions, manifests: &Path, log: &Path) -> Result<Daemon> {
        let file = fs::File::create(log)?;
        let started = Instant::now();
        // `ip netns exec` execs the daemon: the child's pid is the daemon's.
        let child = Command::new("ip")
            .args(["netns", "exec", KIPVS_NETNS])
            .arg(&options.daemon)
            .arg("--manifests")
            .arg(manifests)
            .args([
                "--node-name",
                cluster::NODE_NAME,
                "--cluster-cidr",
                cluster::CLUSTER_CIDR,
                "--healthz-bind-address",
                "",
                // No periodic full resync during the run: the full resync
                // measured is the restarted daemon's first sync.
                "--sync-period",
                "10h",
            ])
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?;
        Ok(Daemon {
            child,
            started,
            log: log.to_owned(),
            offset: 0,
            pending: String::new(),
        })
    }

    /// Waits for the first sync line, noting when the initial state was
    /// read, and reads the peak RSS right after.
    fn first_sync(&mut self, timeout: Duration) -> Result<DaemonStart> {
        let mut manifests_read_s = None;
        let mut ipvs_read = None;
        let sync = self.wait(timeout, |line, at| {
            if is_initial_state_line(line) {
                manifests_read_s = Some(at);
            }
            ipvs_read = ipvs_read.or(ipvs_read_ms(line));
            SyncLine::parse(line)
        })?;
        let wall_s = self.started.elapsed().as_secs_f64();
        Ok(DaemonStart {
            wall_s,
            manifests_read_s: manifests_read_s.unwrap_or(f64::NAN),
            sync,
            ipvs_read_ms: ipvs_read,
            vm_hwm_kib: self.status_kib("VmHWM")?,
            vm_rss_kib: self.status_kib("VmRSS")?,
        })
    }

    fn next_sync(&mut self, timeout: Duration) -> Result<SyncLine> {
        self.wait(timeout, |line, _| SyncLine::parse(line))
    }

    /// Reads new log lines until `found` returns something; `found` also
    /// gets the seconds since the start at which the line was read.
    fn wait<T>(
        &mut self,
        timeout: Duration,
        mut found: impl FnMut(&str, f64) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            for line in self.new_lines()? {
                if let Some(value) = found(&line, self.started.elapsed().as_secs_f64()) {
                    return Ok(value);
                }
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(BenchError::Check(format!(
                    "kube-ipvs exited ({status}); log: {}",
                    self.log.display()
                )));
            }
            if Instant::now() >= deadline {
                return Err(BenchError::Check(format!(
                    "no sync line within {timeout:?}; log: {}",
                    self.log.display()
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Complete lines appended to the log since the last call.
    fn new_lines(&mut self) -> Result<Vec<String>> {
        let mut file = fs::File::open(&self.log)?;
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        self.offset += bytes.len() as u64;
        self.pending.push_str(&String::from_utf8_lossy(&bytes));
        let mut lines = Vec::new();
        while let Some(end) = self.pending.find('\n') {
            lines.push(self.pending[..end].to_owned());
            self.pending.drain(..=end);
        }
        Ok(lines)
    }

    /// A `/proc/<pid>/status` field in KiB (`VmHWM`, `VmRSS`).
    fn status_kib(&self, field: &str) -> Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status_field_kib(&status, field)
            .ok_or_else(|| BenchError::Check(format!("no {field} in /proc status")))
    }

    /// SIGTERM, and a bounded wait for the exit.
    fn stop(&mut self) -> Result<()> {
        run_checked(Command::new("kill").args(["-TERM", &self.child.id().to_string()]))?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.child.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                return Err(BenchError::Check(
                    "kube-ipvs did not exit on SIGTERM".into(),
                ));
            }
            std::thread::sleep(POLL);
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmHWM:     12345 kB` → 12345.
pub fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn machine(daemon: &Path) -> Machine {
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let memory_mib = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| status_field_kib(&m, "MemTotal"))
        .unwrap_or(0)
        / 1024;
    let started = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    Machine {
        kernel,
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_mib,
        started,
        daemon: daemon.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_status_fields_are_read_in_kib() {
        let status =
            "Name:\tkube-ipvs\nVmPeak:\t  400000 kB\nVmHWM:\t   65536 kB\nVmRSS:\t   32768 kB\n";
        assert_eq!(status_field_kib(status, "VmHWM"), Some(65536));
        assert_eq!(status_field_kib(status, "VmRSS"), Some(32768));
        assert_eq!(status_field_kib(status, "VmSwap"), None);
    }
}
