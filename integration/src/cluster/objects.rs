//! The Kubernetes objects of the tests (Services, EndpointSlices, Nodes)
//! and writing them to the fake API server.

use serde_json::{json, Value};

use super::{topology::Cluster, traffic::api_request, Family, POD_PORT};

impl Cluster {
    /// The Node object of node `index`: its zone label and InternalIPs.
    pub fn node_object(&self, index: usize) -> Value {
        let node = &self.nodes[index];
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node.name,
                "labels": {
                    "kubernetes.io/hostname": node.name,
                    "topology.kubernetes.io/zone": node.zone,
                },
            },
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": node.v4},
                    {"type": "InternalIP", "address": node.v6},
                    {"type": "Hostname", "address": node.name},
                ],
            },
        })
    }

    /// Creates or replaces `object` (a Service, EndpointSlice or Node).
    pub fn apply(&self, object: &Value) {
        let body = object.to_string();
        let path = object_path(object);
        let (status, answer) = api_request(&self.lan, "PUT", &path, Some(&body))
            .unwrap_or_else(|e| panic!("PUT {path}: {e}\n{}", self.logs()));
        assert!(
            (200..300).contains(&status),
            "PUT {path}: {status} {answer}"
        );
    }

    /// Deletes `object` (only its kind, namespace and name are used).
    pub fn delete(&self, object: &Value) {
        let path = object_path(object);
        let (status, answer) = api_request(&self.lan, "DELETE", &path, None)
            .unwrap_or_else(|e| panic!("DELETE {path}: {e}\n{}", self.logs()));
        assert!(
            (200..300).contains(&status),
            "DELETE {path}: {status} {answer}"
        );
    }
}

/// A Service `default/<name>` with one TCP port `http`: `port` → the pods'
/// 8080, of the families of `cluster_ips` (the first is primary).
#[derive(Debug, Clone)]
pub struct ServiceObject(pub Value);

impl ServiceObject {
    pub fn cluster_ip(name: &str, cluster_ips: &[&str], port: u16) -> ServiceObject {
        let families: Vec<&str> = cluster_ips
            .iter()
            .map(|ip| Family::of(ip).k8s_name())
            .collect();
        let policy = if cluster_ips.len() > 1 {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        ServiceObject(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": cluster_ips[0],
                "clusterIPs": cluster_ips,
                "ipFamilies": families,
                "ipFamilyPolicy": policy,
                "ports": [{"name": "http", "protocol": "TCP", "port": port, "targetPort": POD_PORT}],
                "sessionAffinity": "None",
            },
        }))
    }

    pub fn name(&self) -> &str {
        self.0["metadata"]["name"].as_str().unwrap()
    }

    /// Type NodePort (unless already LoadBalancer) with `node_port`.
    pub fn node_port(mut self, node_port: u16) -> ServiceObject {
        if self.0["spec"]["type"] != "LoadBalancer" {
            self.0["spec"]["type"] = json!("NodePort");
        }
        self.0["spec"]["ports"][0]["nodePort"] = json!(node_port);
        self
    }

    /// Type LoadBalancer with `node_port` and the ingress IPs in its status.
    pub fn load_balancer(mut self, node_port: u16, ingress: &[&str]) -> ServiceObject {
        self.0["spec"]["type"] = json!("LoadBalancer");
        let ingress: Vec<Value> = ingress.iter().map(|ip| json!({"ip": ip})).collect();
        self.0["status"] = json!({"loadBalancer": {"ingress": ingress}});
        self.node_port(node_port)
    }

    pub fn external_ips(mut self, ips: &[&str]) -> ServiceObject {
        self.0["spec"]["externalIPs"] = json!(ips);
        self
    }

    /// externalTrafficPolicy Local, with a health-check node port.
    pub fn external_local(mut self, health_check_node_port: u16) -> ServiceObject {
        self.0["spec"]["externalTrafficPolicy"] = json!("Local");
        self.0["spec"]["healthCheckNodePort"] = json!(health_check_node_port);
        self
    }

    /// internalTrafficPolicy Local.
    pub fn internal_local(mut self) -> ServiceObject {
        self.0["spec"]["internalTrafficPolicy"] = json!("Local");
        self
    }

    pub fn source_ranges(mut self, ranges: &[&str]) -> ServiceObject {
        self.0["spec"]["loadBalancerSourceRanges"] = json!(ranges);
        self
    }

    /// sessionAffinity ClientIP with `timeout_seconds`.
    pub fn client_ip_affinity(mut self, timeout_seconds: u32) -> ServiceObject {
        self.0["spec"]["sessionAffinity"] = json!("ClientIP");
        self.0["spec"]["sessionAffinityConfig"] =
            json!({"clientIP": {"timeoutSeconds": timeout_seconds}});
        self
    }

    pub fn annotate(mut self, key: &str, value: &str) -> ServiceObject {
        self.0["metadata"]["annotations"][key] = json!(value);
        self
    }
}

/// One endpoint of an EndpointSlice.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: String,
    pub node: String,
    pub zone: String,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub for_zones: Vec<String>,
}

impl Endpoint {
    /// `pod`'s address of `family`, ready, on the pod's node and zone.
    pub fn of(cluster: &Cluster, pod: &str, family: Family) -> Endpoint {
        let pod = cluster.pod(pod);
        let node = &cluster.nodes[pod.node];
        Endpoint {
            addr: pod.addr(family).to_owned(),
            node: node.name.clone(),
            zone: node.zone.clone(),
            ready: true,
            serving: true,
            terminating: false,
            for_zones: Vec::new(),
        }
    }

    /// Terminating but still serving (not ready).
    pub fn terminating(mut self) -> Endpoint {
        self.ready = false;
        self.serving = true;
        self.terminating = true;
        self
    }

    /// A topology hint: `forZones`.
    pub fn for_zones(mut self, zones: &[&str]) -> Endpoint {
        self.for_zones = zones.iter().map(|z| z.to_string()).collect();
        self
    }

    fn to_json(&self) -> Value {
        let mut endpoint = json!({
            "addresses": [self.addr],
            "conditions": {"ready": self.ready, "serving": self.serving, "terminating": self.terminating},
            "nodeName": self.node,
            "zone": self.zone,
        });
        if !self.for_zones.is_empty() {
            let zones: Vec<Value> = self.for_zones.iter().map(|z| json!({"name": z})).collect();
            endpoint["hints"] = json!({"forZones": zones});
        }
        endpoint
    }
}

/// The EndpointSlice `<service>-v4` / `-v6` of `service` (port `http` TCP
/// 8080).
pub fn slice(service: &str, family: Family, endpoints: &[Endpoint]) -> Value {
    let suffix = match family {
        Family::V4 => "v4",
        Family::V6 => "v6",
    };
    let endpoints: Vec<Value> = endpoints.iter().map(Endpoint::to_json).collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{service}-{suffix}"),
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": family.k8s_name(),
        "ports": [{"name": "http", "protocol": "TCP", "port": POD_PORT}],
        "endpoints": endpoints,
    })
}

/// The REST path of an object.
fn object_path(object: &Value) -> String {
    let name = object["metadata"]["name"].as_str().expect("metadata.name");
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    match object["kind"].as_str().expect("kind") {
        "Service" => format!("/api/v1/namespaces/{namespace}/services/{name}"),
        "EndpointSlice" => {
            format!("/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices/{name}")
        }
        "Node" => format!("/api/v1/nodes/{name}"),
        kind => panic!("no path for kind {kind}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_paths_follow_the_kind() {
        let service = ServiceObject::cluster_ip("web", &["10.96.0.10"], 80);
        assert_eq!(
            object_path(&service.0),
            "/api/v1/namespaces/default/services/web"
        );
        assert_eq!(
            object_path(&slice("web", Family::V6, &[])),
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-v6"
        );
    }

    #[test]
    fn dual_stack_services_name_both_families() {
        let service = ServiceObject::cluster_ip("web", &["10.96.0.10", "fd00:96::10"], 80)
            .load_balancer(30080, &["192.168.60.1"])
            .external_local(30300);
        let spec = &service.0["spec"];
        assert_eq!(spec["ipFamilies"], json!(["IPv4", "IPv6"]));
        assert_eq!(spec["ipFamilyPolicy"], "RequireDualStack");
        assert_eq!(spec["type"], "LoadBalancer");
        assert_eq!(spec["ports"][0]["nodePort"], 30080);
        assert_eq!(spec["healthCheckNodePort"], 30300);
        assert_eq!(
            service.0["status"]["loadBalancer"]["ingress"],
            json!([{"ip": "192.168.60.1"}])
        );
    }
}
