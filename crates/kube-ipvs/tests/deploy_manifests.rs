//! deploy/: every manifest is a Kubernetes object the API knows, field by
//! field, and together they keep the promises the README makes: the
//! ClusterRole grants only list and watch on what the daemon reads, the
//! DaemonSet runs like kubeadm's kube-proxy with only CAP_NET_ADMIN, and the
//! image's binary is the one the DaemonSet starts and cargo builds.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use k8s_openapi::api::{
    apps::v1::DaemonSet,
    core::v1::{ConfigMap, Container, ServiceAccount},
    rbac::v1::{ClusterRole, ClusterRoleBinding},
};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The capabilities the daemon's container adds after dropping ALL: the
/// set the README's "Capabilities" paragraph documents and
/// integration/tests/capabilities.rs shows to be enough.
const CAPABILITIES: &[&str] = &["NET_ADMIN"];

/// Where kubeadm mounts kube-proxy's ConfigMap, and so where `--config`
/// and the kubeconfig inside it point.
const CONFIG_DIR: &str = "/var/lib/kube-proxy";

const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Every object of deploy/*.yaml, by kind.
#[derive(Default)]
struct Deploy {
    service_accounts: Vec<ServiceAccount>,
    cluster_roles: Vec<ClusterRole>,
    bindings: Vec<ClusterRoleBinding>,
    config_maps: Vec<ConfigMap>,
    daemon_sets: Vec<DaemonSet>,
}

impl Deploy {
    fn load() -> Deploy {
        let mut files: Vec<PathBuf> = fs::read_dir(deploy_dir())
            .expect("deploy/")
            .map(|entry| entry.expect("deploy/ entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no deploy/*.yaml");
        let mut deploy = Deploy::default();
        for file in files {
            let text = fs::read_to_string(&file).expect("read manifest");
            let documents: Vec<Value> = serde_saphyr::from_multiple(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for document in documents {
                deploy.add(&file, document);
            }
        }
        deploy
    }

    fn add(&mut self, file: &Path, document: Value) {
        let api_version = document["apiVersion"].as_str().unwrap_or_default();
        let kind = document["kind"].as_str().unwrap_or_default();
        let what = format!("{}: {api_version} {kind}", file.display());
        match (api_version, kind) {
            ("v1", "ServiceAccount") => self.service_accounts.push(typed(&what, document)),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                self.cluster_roles.push(typed(&what, document))
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                self.bindings.push(typed(&what, document))
            }
            ("v1", "ConfigMap") => self.config_maps.push(typed(&what, document)),
            ("apps/v1", "DaemonSet") => self.daemon_sets.push(typed(&what, document)),
            _ => panic!("{what}: not a kind deploy/ is expected to hold"),
        }
    }

    fn daemon_set(&self) -> &DaemonSet {
        match &self.daemon_sets[..] {
            [one] => one,
            other => panic!("want one DaemonSet, found {}", other.len()),
        }
    }

    fn daemon_container(&self) -> &Container {
        let pod = pod_spec(self.daemon_set());
        match &pod.containers[..] {
            [one] => one,
            other => panic!("want one container, found {}", other.len()),
        }
    }

    fn config_map(&self, name: &str) -> &ConfigMap {
        self.config_maps
            .iter()
            .find(|map| map.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no ConfigMap {name}"))
    }
}

/// `document` as `T`; it must come back unchanged when written out again,
/// so a misspelt or misplaced field (which the typed reader would drop)
/// fails here rather than being ignored by the API server.
fn typed<T: DeserializeOwned + serde::Serialize>(what: &str, document: Value) -> T {
    let object: T =
        serde_json::from_value(document.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let again = serde_json::to_value(&object).expect("serialize");
    if let Some(path) = first_difference(&document, &again, String::new()) {
        panic!("{what}: {path} is not a field the API knows (or not where it belongs)");
    }
    object
}

/// The path of the first field of `written` that `read` lacks or holds
/// differently.
fn first_difference(written: &Value, read: &Value, path: String) -> Option<String> {
    match (written, read) {
        (Value::Object(a), Value::Object(b)) => a.iter().find_map(|(key, value)| {
            let here = format!("{path}.{key}");
            match b.get(key) {
                Some(other) => first_difference(value, other, here),
                None => Some(here),
            }
        }),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, format!("{path}[{i}]"))),
        _ => (written != read).then_some(path),
    }
}

fn pod_spec(daemon_set: &DaemonSet) -> &k8s_openapi::api::core::v1::PodSpec {
    daemon_set
        .spec
        .as_ref()
        .and_then(|spec| spec.template.spec.as_ref())
        .expect("DaemonSet pod spec")
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

#[test]
fn every_namespaced_object_is_in_kube_system() {
    let deploy = Deploy::load();
    let namespaces: Vec<Option<&str>> = deploy
        .service_accounts
        .iter()
        .map(|o| o.metadata.namespace.as_deref())
        .chain(
            deploy
                .config_maps
                .iter()
                .map(|o| o.metadata.namespace.as_deref()),
        )
        .chain(
            deploy
                .daemon_sets
                .iter()
                .map(|o| o.metadata.namespace.as_deref()),
        )
        .collect();
    assert_eq!(namespaces, vec![Some("kube-system"); 3]);
}

#[test]
fn the_cluster_role_grants_only_list_and_watch_on_what_the_daemon_reads() {
    let deploy = Deploy::load();
    let [role] = &deploy.cluster_roles[..] else {
        panic!("want one ClusterRole");
    };
    let mut granted = BTreeSet::new();
    for rule in role.rules.as_deref().unwrap_or_default() {
        assert_eq!(rule.resource_names, None, "{rule:?}");
        assert_eq!(rule.non_resource_urls, None, "{rule:?}");
        for group in rule.api_groups.as_deref().unwrap_or_default() {
            for resource in rule.resources.as_deref().unwrap_or_default() {
                for verb in &rule.verbs {
                    granted.insert((group.as_str(), resource.as_str(), verb.as_str()));
                }
            }
        }
    }
    let want = BTreeSet::from([
        ("", "services", "list"),
        ("", "services", "watch"),
        ("", "nodes", "list"),
        ("", "nodes", "watch"),
        ("discovery.k8s.io", "endpointslices", "list"),
        ("discovery.k8s.io", "endpointslices", "watch"),
    ]);
    assert_eq!(granted, want);

    // Bound to the service account the DaemonSet runs as.
    let [binding] = &deploy.bindings[..] else {
        panic!("want one ClusterRoleBinding");
    };
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref());
    let [subject] = binding.subjects.as_deref().unwrap_or_default() else {
        panic!("want one subject");
    };
    let [account] = &deploy.service_accounts[..] else {
        panic!("want one ServiceAccount");
    };
    assert_eq!(subject.kind, "ServiceAccount");
    assert_eq!(Some(&subject.name), account.metadata.name.as_ref());
    assert_eq!(subject.namespace.as_deref(), Some("kube-system"));
    let pod = pod_spec(deploy.daemon_set());
    assert_eq!(pod.service_account_name, account.metadata.name);
    assert_ne!(pod.automount_service_account_token, Some(false));
}

#[test]
fn the_daemon_set_runs_like_kubeadms_kube_proxy() {
    let deploy = Deploy::load();
    let pod = pod_spec(deploy.daemon_set());
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("system-node-critical")
    );
    // On every node whatever its taints, as kube-proxy.
    let tolerations = pod.tolerations.as_deref().unwrap_or_default();
    assert!(
        tolerations
            .iter()
            .any(|t| t.operator.as_deref() == Some("Exists")
                && t.key.is_none()
                && t.effect.is_none()),
        "{tolerations:?}"
    );

    let container = deploy.daemon_container();
    assert_eq!(
        container.command,
        Some(strings(&[
            "/usr/local/bin/kube-ipvs",
            &format!("--config={CONFIG_DIR}/config.conf"),
            "--hostname-override=$(NODE_NAME)",
        ]))
    );
    assert_eq!(container.args, None);
    let node_name = container
        .env
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|var| var.name == "NODE_NAME")
        .expect("NODE_NAME");
    let field = node_name
        .value_from
        .as_ref()
        .and_then(|from| from.field_ref.as_ref())
        .expect("NODE_NAME from a field");
    assert_eq!(field.field_path, "spec.nodeName");

    let probe_get = |probe: Option<&k8s_openapi::api::core::v1::Probe>| {
        let get = probe.and_then(|p| p.http_get.as_ref()).expect("httpGet");
        (get.path.clone(), get.port.clone())
    };
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int;
    assert_eq!(
        probe_get(container.liveness_probe.as_ref()),
        (Some("/livez".to_owned()), Int(10256))
    );
    assert_eq!(
        probe_get(container.readiness_probe.as_ref()),
        (Some("/healthz".to_owned()), Int(10256))
    );

    // /lib/modules from the host, read-only.
    let mounts = container.volume_mounts.as_deref().unwrap_or_default();
    let modules = mounts
        .iter()
        .find(|m| m.mount_path == "/lib/modules")
        .expect("/lib/modules mount");
    assert_eq!(modules.read_only, Some(true));
    let volumes = pod.volumes.as_deref().unwrap_or_default();
    let volume = |name: &str| {
        volumes
            .iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("no volume {name}"))
    };
    let host = volume(&modules.name).host_path.as_ref().expect("hostPath");
    assert_eq!(host.path, "/lib/modules");

    // The ConfigMap where kubeadm puts kube-proxy's.
    let config = mounts
        .iter()
        .find(|m| m.mount_path == CONFIG_DIR)
        .expect("config mount");
    let map = volume(&config.name).config_map.as_ref().expect("configMap");
    deploy.config_map(&map.name);
}

#[test]
fn the_daemon_runs_with_only_cap_net_admin_and_a_privileged_init_sets_sysctls() {
    let deploy = Deploy::load();
    let container = deploy.daemon_container();
    let security = container
        .security_context
        .as_ref()
        .expect("securityContext");
    assert_ne!(security.privileged, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    let caps = security.capabilities.as_ref().expect("capabilities");
    assert_eq!(caps.drop, Some(strings(&["ALL"])));
    assert_eq!(caps.add, Some(strings(CAPABILITIES)));

    // The one privileged step: `--init-only` from the same image, before
    // the daemon starts.
    let pod = pod_spec(deploy.daemon_set());
    let [init] = pod.init_containers.as_deref().unwrap_or_default() else {
        panic!("want one init container");
    };
    assert_eq!(init.image, container.image);
    assert_eq!(
        init.command,
        Some(strings(&["/usr/local/bin/kube-ipvs", "--init-only"]))
    );
    assert_eq!(
        init.security_context.as_ref().and_then(|s| s.privileged),
        Some(true)
    );
}

#[test]
fn the_config_map_holds_kubeadms_config_and_a_kubeconfig_to_the_real_api_server() {
    let deploy = Deploy::load();
    let data = deploy.config_map("kube-ipvs").data.as_ref().expect("data");
    assert_eq!(
        data.keys().map(String::as_str).collect::<Vec<_>>(),
        ["config.conf", "kubeconfig.conf"]
    );

    let config: Value = serde_saphyr::from_str(&data["config.conf"]).expect("config.conf");
    assert_eq!(config["apiVersion"], "kubeproxy.config.k8s.io/v1alpha1");
    assert_eq!(config["kind"], "KubeProxyConfiguration");
    assert_eq!(config["mode"], "ipvs");
    assert_eq!(
        config["clientConnection"]["kubeconfig"],
        format!("{CONFIG_DIR}/kubeconfig.conf")
    );
    // The probes' port.
    assert_eq!(config["healthzBindAddress"], "0.0.0.0:10256");

    let kubeconfig: Value =
        serde_saphyr::from_str(&data["kubeconfig.conf"]).expect("kubeconfig.conf");
    assert_eq!(kubeconfig["kind"], "Config");
    let cluster = &kubeconfig["clusters"][0]["cluster"];
    assert_eq!(
        cluster["certificate-authority"],
        format!("{SERVICE_ACCOUNT_DIR}/ca.crt")
    );
    // An address of the API server itself, never the `kubernetes`
    // Service (which kube-ipvs has to program first).
    let server = cluster["server"].as_str().expect("server");
    assert!(server.starts_with("https://"), "{server}");
    assert!(!server.contains("kubernetes.default"), "{server}");
    assert_eq!(
        kubeconfig["users"][0]["user"]["tokenFile"],
        format!("{SERVICE_ACCOUNT_DIR}/token")
    );
    assert_eq!(
        kubeconfig["contexts"][0]["context"]["user"],
        kubeconfig["users"][0]["name"]
    );
}

/// The JSON-array instruction `ENTRYPOINT ["..."]` of the final stage, and
/// the destinations of that stage's COPY instructions.
fn final_stage(containerfile: &str) -> (Vec<String>, Vec<String>, String) {
    let stage = containerfile
        .rsplit_once("\nFROM ")
        .map(|(_, stage)| stage)
        .expect("a FROM line");
    let base = stage.lines().next().unwrap_or_default().trim().to_owned();
    let mut entrypoint = Vec::new();
    let mut copies = Vec::new();
    for line in stage.lines() {
        if let Some(json) = line.strip_prefix("ENTRYPOINT ") {
            entrypoint = serde_json::from_str(json).expect("ENTRYPOINT as a JSON array");
        } else if let Some(copy) = line.strip_prefix("COPY ") {
            copies.push(
                copy.split_whitespace()
                    .last()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
    }
    (entrypoint, copies, base)
}

#[test]
fn the_image_runs_the_binary_cargo_builds_and_the_daemon_set_starts() {
    let containerfile = fs::read_to_string(deploy_dir().join("Containerfile")).expect("read");
    let (entrypoint, copies, base) = final_stage(&containerfile);
    assert_eq!(base, "scratch", "nothing but the binary in the image");
    assert_eq!(entrypoint, ["/usr/local/bin/kube-ipvs"]);
    assert_eq!(copies, entrypoint, "the image's only file is the binary");

    // The build stage builds this package's binary, the one this test's
    // cargo built as well.
    assert_eq!(env!("CARGO_PKG_NAME"), "kube-ipvs");
    let built = Path::new(env!("CARGO_BIN_EXE_kube-ipvs"));
    assert_eq!(
        built.file_name().and_then(|n| n.to_str()),
        Some("kube-ipvs")
    );
    let build = containerfile
        .lines()
        .find(|l| l.contains("cargo build"))
        .expect("a cargo build line");
    assert!(build.contains(" -p kube-ipvs "), "{build}");
    assert!(build.contains(" --bin kube-ipvs"), "{build}");
    let install = containerfile
        .lines()
        .find(|l| l.contains("install -D"))
        .expect("an install line");
    assert!(
        install.contains("/release/kube-ipvs /out/usr/local/bin/kube-ipvs"),
        "{install}"
    );

    // Both of the DaemonSet's containers start it.
    let deploy = Deploy::load();
    let pod = pod_spec(deploy.daemon_set());
    for container in pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
    {
        let command = container.command.as_deref().unwrap_or_default();
        assert_eq!(command.first(), entrypoint.first(), "{}", container.name);
    }
}
