//! Support for the kernel tests that run inside the VM (`make e2e`).
//!
//! Each test gets its own named network namespace, so it has its own IPVS
//! table, ipsets, nf_tables and links, and the operator tools (`ipvsadm`,
//! `ipset`, `nft`, `ip`) can be pointed at it with `ip netns exec`.

use std::{
    fs::File,
    future::Future,
    process::Command,
    sync::atomic::{AtomicUsize, Ordering},
};

use nix::sched::{setns, CloneFlags};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A named network namespace (`ip netns add`), deleted on drop.
pub struct TestNetns {
    name: String,
}

impl TestNetns {
    pub fn new(label: &str) -> TestNetns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("kipvs-{label}-{}-{n}", std::process::id());
        run_checked(&["ip", "netns", "add", &name]);
        let netns = TestNetns { name };
        netns.exec(&["ip", "link", "set", "lo", "up"]);
        netns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `body` on a fresh thread that has entered this namespace, on a
    /// current-thread runtime, so every socket our code opens lives in it.
    pub fn run<F, Fut, T>(&self, body: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(body())
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// Runs an operator tool inside the namespace; panics unless it succeeds.
    /// Returns its standard output.
    pub fn exec(&self, argv: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(argv);
        run_checked(&full)
    }

    /// Like [`exec`](Self::exec) but returns (success, stdout + stderr).
    pub fn try_exec(&self, argv: &[&str]) -> (bool, String) {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(argv);
        let out = Command::new(full[0]).args(&full[1..]).output().expect("spawn ip netns exec");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Runs a command; panics with its output unless it succeeds.
pub fn run_checked(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
