//! The benchmark's cluster: N ClusterIP services with 10 endpoints each,
//! written once as manifests for kube-ipvs and once as input files for the
//! kernel's own tools (`ipvsadm -R`, `ipset restore`, `ip -batch`), so both
//! program the same state.
//!
//! Every service is `bench/svc-<i>`, TCP port 80 (named `http`) to target
//! port 8080, with one EndpointSlice of 10 ready endpoints on another node.
//! Addresses come from ranges that never overlap: cluster IPs from
//! 10.96.0.0/12, endpoints from 10.128.0.0/10, the replacement endpoints of
//! the endpoint-change phase from 10.192.0.0/10 (all inside the pod range
//! [`CLUSTER_CIDR`] except the cluster IPs).

use std::{
    fmt::Write as _,
    fs,
    io::{self, Write as _},
    net::Ipv4Addr,
    path::Path,
};

/// Endpoints per service.
pub const ENDPOINTS: usize = 10;
/// The namespace of every service.
pub const NAMESPACE: &str = "bench";
/// The node kube-ipvs runs as; every endpoint is on another one.
pub const NODE_NAME: &str = "node-a";
/// `--cluster-cidr`: the endpoint ranges.
pub const CLUSTER_CIDR: &str = "10.128.0.0/9";
/// Services per manifest file: the manifests source re-reads a file only
/// when it changes, so a few hundred documents per file keeps the start-up
/// read in bulk without making the directory scan long.
const SERVICES_PER_FILE: usize = 100;
/// The file holding only the EndpointSlice the endpoint-change phase
/// rewrites, so a change re-parses one document, as a watch event would
/// deliver one object.
pub const CHANGE_FILE: &str = "zz-changed-slice.yaml";

const CLUSTER_IP_BASE: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const ENDPOINT_BASE: u32 = u32::from_be_bytes([10, 128, 0, 0]);
const REPLACEMENT_BASE: u32 = u32::from_be_bytes([10, 192, 0, 0]);

/// Cluster IPs up to 10.111.255.255, endpoints up to 10.191.255.255.
pub const MAX_SERVICES: usize = 400_000;

pub fn service_name(i: usize) -> String {
    format!("svc-{i}")
}

/// Service `i`'s cluster IP, skipping addresses ending in .0 and .255 (valid
/// as /32s, but they look like network and broadcast addresses to a reader).
pub fn cluster_ip(i: usize) -> Ipv4Addr {
    let i = i as u32;
    Ipv4Addr::from(CLUSTER_IP_BASE + (i / 254) * 256 + i % 254 + 1)
}

/// Endpoint `j` of service `i`.
pub fn endpoint_ip(i: usize, j: usize) -> Ipv4Addr {
    Ipv4Addr::from(ENDPOINT_BASE + (i * ENDPOINTS + j) as u32 + 1)
}

/// The address that replaces endpoint 0 of the changed service in change
/// `k` (counted from 1); each change brings a new one.
pub fn replacement_ip(k: usize) -> Ipv4Addr {
    Ipv4Addr::from(REPLACEMENT_BASE + k as u32)
}

/// The service whose endpoint the endpoint-change phase replaces: one in
/// the middle, so neither end of any ordered structure is favoured.
pub fn changed_service(n: usize) -> usize {
    n / 2
}

fn service_yaml(out: &mut String, i: usize) {
    let ip = cluster_ip(i);
    let _ = write!(
        out,
        "---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {NAMESPACE}
spec:
  type: ClusterIP
  clusterIP: {ip}
  clusterIPs: [\"{ip}\"]
  ports:
  - name: http
    port: 80
    protocol: TCP
    targetPort: 8080
",
        name = service_name(i)
    );
}

fn slice_yaml(out: &mut String, i: usize, endpoints: &[Ipv4Addr]) {
    let name = service_name(i);
    let _ = write!(
        out,
        "---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-bench
  namespace: {NAMESPACE}
  labels:
    kubernetes.io/service-name: {name}
addressType: IPv4
ports:
- name: http
  port: 8080
  protocol: TCP
endpoints:
"
    );
    for ip in endpoints {
        let _ = write!(
            out,
            "- addresses: [\"{ip}\"]
  conditions: {{ready: true}}
  nodeName: node-b
"
        );
    }
}

fn endpoints_of(i: usize) -> Vec<Ipv4Addr> {
    (0..ENDPOINTS).map(|j| endpoint_ip(i, j)).collect()
}

/// Writes the manifests of `n` services into `dir` (which must exist and
/// be empty): `services-<k>.yaml` with up to 100 services and their
/// slices, and [`CHANGE_FILE`] with the slice of [`changed_service`].
pub fn write_manifests(dir: &Path, n: usize) -> io::Result<()> {
    let changed = changed_service(n);
    for (file, start) in (0..n).step_by(SERVICES_PER_FILE).enumerate() {
        let mut text = String::new();
        for i in start..(start + SERVICES_PER_FILE).min(n) {
            service_yaml(&mut text, i);
            if i != changed {
                slice_yaml(&mut text, i, &endpoints_of(i));
            }
        }
        fs::write(dir.join(format!("services-{file:05}.yaml")), text)?;
    }
    if n > 0 {
        write_changed_slice(dir, n, 0)?;
    }
    Ok(())
}

/// Rewrites [`CHANGE_FILE`] for change `k` (0: the original endpoints):
/// endpoint 0 of the changed service replaced by [`replacement_ip`]`(k)`.
/// Written to a hidden file and renamed, so the poller never reads half a
/// file.
pub fn write_changed_slice(dir: &Path, n: usize, k: usize) -> io::Result<()> {
    let i = changed_service(n);
    let mut endpoints = endpoints_of(i);
    if k > 0 {
        endpoints[0] = replacement_ip(k);
    }
    let mut text = String::new();
    slice_yaml(&mut text, i, &endpoints);
    let hidden = dir.join(format!(".{CHANGE_FILE}.tmp"));
    let mut file = fs::File::create(&hidden)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(hidden, dir.join(CHANGE_FILE))
}

/// `ipvsadm -R` input: every virtual service and its Masq real servers,
/// weight 1, scheduler rr (what kube-ipvs programs for these services).
pub fn ipvsadm_rules(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let vip = cluster_ip(i);
        let _ = writeln!(out, "-A -t {vip}:80 -s rr");
        for j in 0..ENDPOINTS {
            let _ = writeln!(out, "-a -t {vip}:80 -r {}:8080 -m -w 1", endpoint_ip(i, j));
        }
    }
    out
}

/// `ipset restore` input: `KUBE-CLUSTER-IP` as kube-ipvs creates it
/// (hash:ip,port, hashsize 1024, maxelem 65536, comment) with one
/// commented entry per service port.
pub fn ipset_restore(n: usize) -> String {
    let mut out = String::from(
        "create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 comment\n",
    );
    for i in 0..n {
        let _ = writeln!(
            out,
            "add KUBE-CLUSTER-IP {},tcp:80 comment \"{NAMESPACE}/{}:http\"",
            cluster_ip(i),
            service_name(i)
        );
    }
    out
}

/// `ip -batch` input: every cluster IP as a /32 on `kube-ipvs0`.
pub fn ip_batch(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let _ = writeln!(out, "address add {}/32 dev kube-ipvs0", cluster_ip(i));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use kipvs_cluster::{parse_manifest, ManifestObject};

    use super::*;

    #[test]
    fn addresses_never_repeat_or_overlap_across_ranges() {
        let n = 2_000;
        let mut seen = BTreeSet::new();
        for i in 0..n {
            assert!(seen.insert(cluster_ip(i)), "cluster IP {i}");
            let last = cluster_ip(i).octets()[3];
            assert!(last != 0 && last != 255, "{}", cluster_ip(i));
            for j in 0..ENDPOINTS {
                assert!(seen.insert(endpoint_ip(i, j)), "endpoint {i}/{j}");
            }
        }
        for k in 1..=10 {
            assert!(seen.insert(replacement_ip(k)), "replacement {k}");
        }
        let last = cluster_ip(MAX_SERVICES - 1);
        assert!(last < Ipv4Addr::new(10, 112, 0, 0), "{last}");
        let last = endpoint_ip(MAX_SERVICES - 1, ENDPOINTS - 1);
        assert!(last < Ipv4Addr::new(10, 192, 0, 0), "{last}");
    }

    #[test]
    fn manifests_hold_one_service_and_one_slice_per_service() {
        let dir = std::env::temp_dir().join(format!("kipvs-bench-gen-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        write_manifests(&dir, 250).unwrap();
        let mut services = BTreeSet::new();
        let mut slices = Vec::new();
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = fs::read_to_string(&path).unwrap();
            let (objects, errors) = parse_manifest(&path.display().to_string(), &text);
            assert!(errors.is_empty(), "{errors:?}");
            for object in objects {
                match object {
                    ManifestObject::Service(s) => {
                        services.insert(s.metadata.name.clone().unwrap());
                    }
                    ManifestObject::EndpointSlice(s) => slices.push(s),
                    ManifestObject::Node(_) => panic!("no node expected"),
                }
            }
        }
        assert_eq!(services.len(), 250);
        assert_eq!(slices.len(), 250);
        assert!(slices.iter().all(|s| s.endpoints.len() == ENDPOINTS));

        write_changed_slice(&dir, 250, 3).unwrap();
        let text = fs::read_to_string(dir.join(CHANGE_FILE)).unwrap();
        let (objects, _) = parse_manifest(CHANGE_FILE, &text);
        let [ManifestObject::EndpointSlice(slice)] = &objects[..] else {
            panic!("{objects:?}");
        };
        let addresses: Vec<&str> = slice
            .endpoints
            .iter()
            .map(|e| e.addresses[0].as_str())
            .collect();
        assert_eq!(addresses[0], replacement_ip(3).to_string());
        assert_eq!(addresses[1], endpoint_ip(125, 1).to_string());
        assert_eq!(
            slice.metadata.labels.as_ref().unwrap()["kubernetes.io/service-name"],
            "svc-125"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tool_inputs_describe_the_same_services() {
        let rules = ipvsadm_rules(3);
        assert_eq!(rules.lines().count(), 3 * (1 + ENDPOINTS));
        assert!(rules.starts_with(
            "-A -t 10.96.0.1:80 -s rr\n-a -t 10.96.0.1:80 -r 10.128.0.1:8080 -m -w 1\n"
        ));
        let sets = ipset_restore(2);
        assert!(
            sets.contains("add KUBE-CLUSTER-IP 10.96.0.2,tcp:80 comment \"bench/svc-1:http\"\n")
        );
        assert_eq!(
            ip_batch(2),
            "address add 10.96.0.1/32 dev kube-ipvs0\naddress add 10.96.0.2/32 dev kube-ipvs0\n"
        );
        assert_eq!(cluster_ip(254), Ipv4Addr::new(10, 96, 1, 1));
    }
}
