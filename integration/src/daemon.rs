//! The workspace's binaries run as processes in a node namespace: the real
//! `kube-ipvs` daemon ([`Daemon`], with its per-sync log lines parsed) and
//! the fake API server ([`ApiServer`]). Both log to a file, are killed on
//! drop, and are waited for with bounded polls (everything runs about 5x
//! slower under the VM's TCG; tests assert content, never time).

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
};

use crate::{built_binary, eventually, run_checked, TestNetns};

/// The node the daemon runs as; endpoints with this `nodeName` are local.
pub const NODE_NAME: &str = "node-a";

/// The daemon flags after the cluster source (`--kubeconfig F` or
/// `--manifests DIR`): node-a, pod range 10.244.0.0/16, a full resync every
/// 2 s, debug logs.
pub const NODE_FLAGS: &[&str] = &[
    "--node-name",
    NODE_NAME,
    "--cluster-cidr",
    "10.244.0.0/16",
    "--sync-period",
    "2s",
    "-v",
];

/// Polls of a bounded wait: 120 × 0.5 s.
const TRIES: usize = 120;

/// One `kube-ipvs` process (or the wrapper it runs under) in a node
/// namespace, its output in `log`; killed on drop.
pub struct Daemon {
    child: Child,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `kube-ipvs <source...> <NODE_FLAGS>` in `netns`.
    pub fn start(netns: &TestNetns, source: &[&str], log: PathBuf) -> Daemon {
        Daemon::start_under(netns, &[], source, log)
    }

    /// Starts `kube-ipvs <source...> <NODE_FLAGS>` in `netns` behind
    /// `wrapper` (say `strace -f -o FILE`). Without a wrapper `ip netns
    /// exec` execs the daemon, so the child's pid is the daemon's.
    pub fn start_under(
        netns: &TestNetns,
        wrapper: &[&str],
        source: &[&str],
        log: PathBuf,
    ) -> Daemon {
        let mut args = source.to_vec();
        args.extend_from_slice(NODE_FLAGS);
        Daemon::spawn(netns, wrapper, &args, log)
    }

    /// Starts `kube-ipvs <args...>` in `netns` behind `wrapper` (may be
    /// empty), every flag given by the caller: a node of a multi-node
    /// cluster has its own `--node-name`.
    pub fn spawn(netns: &TestNetns, wrapper: &[&str], args: &[&str], log: PathBuf) -> Daemon {
        let binary = built_binary("kube-ipvs");
        let mut argv: Vec<&str> = wrapper.to_vec();
        argv.push(binary.to_str().unwrap());
        argv.extend_from_slice(args);
        let mut command = in_netns(netns, &argv, &log);
        // Plain log text whatever the caller's environment; -v decides the
        // level.
        command.env("NO_COLOR", "1").env_remove("RUST_LOG");
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
        Daemon { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far, terminal colour codes removed.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Every per-sync info line so far, parsed.
    pub fn syncs(&self) -> Vec<SyncLine> {
        self.log().lines().filter_map(SyncLine::parse).collect()
    }

    /// How many full resyncs the log shows so far.
    pub fn full_syncs(&self) -> usize {
        self.syncs().iter().filter(|s| s.full).count()
    }

    /// Waits (bounded) until the log has more than `count` sync lines and
    /// returns them all; panics if the daemon exits first.
    pub fn wait_for_syncs(&mut self, count: usize, what: &str) -> Vec<SyncLine> {
        for _ in 0..TRIES {
            let syncs = self.syncs();
            if syncs.len() > count {
                return syncs;
            }
            assert!(self.running(), "kube-ipvs exited early\n{}", self.log());
            std::thread::sleep(crate::PAUSE);
        }
        panic!("{what}: no sync line after 60 s\n{}", self.log());
    }

    /// Sends `signal` (`-STOP`, `-CONT`, …) to the daemon; panics unless
    /// `kill` succeeds.
    pub fn signal(&self, signal: &str) {
        run_checked(&["kill", signal, &self.pid().to_string()]);
    }

    /// Sends SIGTERM to the daemon and waits (bounded) for its exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.terminate_pid(self.pid())
    }

    /// Sends SIGTERM to `pid` (the daemon behind a wrapper) and waits
    /// (bounded) for this child to exit.
    pub fn terminate_pid(&mut self, pid: u32) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let mut status = None;
        eventually(TRIES, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        status.unwrap_or_else(|| panic!("kube-ipvs did not exit on SIGTERM\n{}", self.log()))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The daemon's per-sync info line:
/// `INFO sync full=true steps=0 failed=0 messages_sent=.. virtual_services=.. elapsed_ms=..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncLine {
    pub full: bool,
    pub steps: usize,
    pub failed: usize,
    pub line: String,
}

impl SyncLine {
    pub fn parse(line: &str) -> Option<SyncLine> {
        let rest = &line[line.find(" sync full=")? + 1..];
        let field = |name: &str| {
            rest.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        };
        Some(SyncLine {
            full: field("full")? == "true",
            steps: field("steps")?.parse().ok()?,
            failed: field("failed")?.parse().ok()?,
            line: line.to_owned(),
        })
    }
}

/// The fake API server binary (`fake-apiserver --listen ADDR
/// --kubeconfig-out FILE`) in a node namespace; killed on drop.
pub struct ApiServer {
    child: Child,
    pub log: PathBuf,
}

impl ApiServer {
    /// Starts the server and waits (bounded) until it listens and has
    /// written the kubeconfig pointing at it.
    pub fn start(netns: &TestNetns, listen: &str, kubeconfig: &Path, log: PathBuf) -> ApiServer {
        let server = built_binary("fake-apiserver");
        let argv = [
            server.to_str().unwrap(),
            "--listen",
            listen,
            "--kubeconfig-out",
            kubeconfig.to_str().unwrap(),
        ];
        let child = in_netns(netns, &argv, &log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
        let server = ApiServer { child, log };
        let up = eventually(TRIES, || {
            read_log(&server.log).contains("listening") && kubeconfig.exists()
        });
        assert!(up, "fake-apiserver did not start:\n{}", server.log());
        server
    }

    /// The log so far.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `argv` inside `netns`, stdin closed, stdout and stderr to `log`.
fn in_netns(netns: &TestNetns, argv: &[&str], log: &Path) -> Command {
    let out = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let err = out.try_clone().unwrap();
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", netns.name()])
        .args(argv)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    command
}

/// A log file's text with ANSI colour sequences removed (in case the
/// subscriber colours its output even into a file); empty if missing.
pub fn read_log(path: &Path) -> String {
    let raw = std::fs::read_to_string(path).unwrap_or_default();
    let mut text = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... final byte in @..~
            for next in chars.by_ref() {
                if ('@'..='~').contains(&next) && next != '[' {
                    break;
                }
            }
        } else {
            text.push(c);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_lines_parse_and_other_lines_do_not() {
        let line = "2025-01-01T00:00:00Z  INFO sync full=true steps=3 failed=1 messages_sent=9 virtual_services=2 elapsed_ms=5";
        assert_eq!(
            SyncLine::parse(line),
            Some(SyncLine {
                full: true,
                steps: 3,
                failed: 1,
                line: line.to_owned()
            })
        );
        assert_eq!(
            SyncLine::parse("DEBUG sync: nothing to do elapsed_ms=1"),
            None
        );
    }
}
