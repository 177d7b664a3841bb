//! The binary refuses a bad `--config` file before touching the kernel:
//! exit status 2 and a message naming the file and the field, as kube-proxy
//! refuses an unknown field or another proxy mode.

use std::process::Command;

const CONFIG: &str = r#"apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: /nonexistent/kubeconfig.conf
clusterCIDR: 10.244.0.0/16
ipvs:
  strictARP: true
  syncPeriod: 2s
mode: ipvs
"#;

fn run(name: &str, text: &str, extra: &[&str]) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!("kube-ipvs-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kube-ipvs"))
        .arg(format!("--config={}", path.display()))
        .arg("--hostname-override=node-a")
        .args(extra)
        .env_remove("NODE_NAME")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains(&path.display().to_string()),
        "the file is not named: {stderr}"
    );
    (out.status.code(), stderr)
}

#[test]
fn an_unknown_field_exits_2_naming_it() {
    let (code, stderr) = run(
        "unknown.conf",
        &CONFIG.replace("  strictARP: true", "  strictArp: true"),
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("ipvs.strictArp: unknown field `strictArp`"),
        "{stderr}"
    );
}

#[test]
fn a_mode_other_than_ipvs_exits_2_naming_it() {
    let (code, stderr) = run(
        "iptables.conf",
        &CONFIG.replace("mode: ipvs", "mode: iptables"),
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("mode: \"iptables\" is not supported"),
        "{stderr}"
    );
}

#[test]
fn a_bad_duration_exits_2_naming_the_field() {
    let (code, stderr) = run(
        "duration.conf",
        &CONFIG.replace("syncPeriod: 2s", "syncPeriod: soon"),
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("ipvs.syncPeriod: invalid duration"),
        "{stderr}"
    );
}
