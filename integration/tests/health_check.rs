//! Health-check node ports and the proxy's own health endpoints, as a
//! cloud load balancer and a kubelet probe see them: plain HTTP requests
//! (`curl -i`) to the daemon's listeners in the node namespace.
//!
//! A LoadBalancer service with `externalTrafficPolicy: Local` and
//! `healthCheckNodePort` answers 503 with its JSON body while this node has
//! no endpoint of it, 200 with `localEndpoints: 1` once one is added (on
//! IPv4 and IPv6), and the listener goes away with the service.

mod daemon_support;

use daemon_support::{services_path, slices_path, Node};
use kipvs_integration::{daemon::NODE_NAME, TestNetns};
use serde_json::{json, Value};

const HEALTH_PORT: u16 = 32100;

fn lb_service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "lb", "namespace": "default"},
        "spec": {
            "type": "LoadBalancer",
            "clusterIP": "10.96.0.30",
            "clusterIPs": ["10.96.0.30"],
            "externalTrafficPolicy": "Local",
            "healthCheckNodePort": HEALTH_PORT,
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30090}],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}},
    })
}

/// The slice of `lb` with one ready endpoint on `node_name`.
fn lb_slice(node_name: &str) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "lb-slice",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "lb"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
        "endpoints": [{"addresses": ["10.244.1.2"], "conditions": {"ready": true}, "nodeName": node_name}],
    })
}

/// One HTTP answer: status code, headers (lowercased), body.
#[derive(Debug)]
struct Answer {
    code: u16,
    headers: Vec<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    fn has_header(&self, header: &str) -> bool {
        self.headers.iter().any(|h| h == header)
    }
}

/// `curl -i URL` from `netns`; `None` when nothing answers (refused).
fn get(netns: &TestNetns, url: &str) -> Option<Answer> {
    let (ok, out) = netns.try_exec(&["curl", "-s", "-i", "-m", "5", url]);
    if !ok {
        return None;
    }
    let (head, body) = out.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let code = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    Some(Answer {
        code,
        headers: lines.map(|l| l.trim().to_ascii_lowercase()).collect(),
        body: body.to_owned(),
    })
}

fn health_url(host: &str) -> String {
    format!("http://{host}:{HEALTH_PORT}/any/path")
}

fn expected_body(local_endpoints: usize) -> Value {
    json!({
        "service": {"namespace": "default", "name": "lb"},
        "localEndpoints": local_endpoints,
        "serviceProxyHealthy": true,
    })
}

#[test]
fn health_check_node_port_reports_local_endpoints_and_closes_with_the_service() {
    let node = Node::new();
    node.create_node_object();
    node.create(&services_path("default"), &lb_service());
    node.create(&slices_path("default"), &lb_slice("node-b"));
    let _daemon = node.start_daemon();

    // No endpoint on this node: 503, the load balancer avoids the node.
    node.wait_for("the health-check port answering", || {
        get(&node.netns, &health_url("127.0.0.1")).is_some()
    });
    let answer = get(&node.netns, &health_url("127.0.0.1")).unwrap();
    assert_eq!(answer.code, 503, "{answer:?}");
    assert_eq!(answer.json(), expected_body(0));
    assert!(
        answer.has_header("content-type: application/json"),
        "{answer:?}"
    );
    assert!(
        answer.has_header("x-content-type-options: nosniff"),
        "{answer:?}"
    );

    // An endpoint moves to this node: 200 with one local endpoint, on
    // both families (one listener for all addresses).
    node.replace(
        &format!("{}/lb-slice", slices_path("default")),
        &lb_slice(NODE_NAME),
    );
    node.wait_for("200 once an endpoint is local", || {
        get(&node.netns, &health_url("127.0.0.1")).is_some_and(|a| a.code == 200)
    });
    let answer = get(&node.netns, &health_url("127.0.0.1")).unwrap();
    assert_eq!(answer.json(), expected_body(1));
    let v6 = get(&node.netns, &health_url("[::1]")).expect("an answer over IPv6");
    assert_eq!((v6.code, v6.json()), (200, expected_body(1)));
    let v4_node_ip = get(&node.netns, &health_url("192.168.77.1")).expect("on the node IP");
    assert_eq!(v4_node_ip.code, 200);

    // The service goes: so does its listener.
    node.delete(&format!("{}/lb", services_path("default")));
    node.wait_for("the health-check port closed", || {
        get(&node.netns, &health_url("127.0.0.1")).is_none()
    });
}

#[test]
fn healthz_and_livez_answer_like_kube_proxy() {
    let node = Node::new();
    node.create_node_object();
    let mut daemon = node.start_daemon();
    daemon.wait_for_syncs(0, "the first sync");
    let url = "http://127.0.0.1:10256/healthz";
    node.wait_for("/healthz answering", || get(&node.netns, url).is_some());
    let healthz = get(&node.netns, url).unwrap();
    assert_eq!(healthz.code, 200, "{healthz:?}");
    assert!(healthz.has_header("content-type: application/json"));
    assert!(healthz.has_header("x-content-type-options: nosniff"));
    let body = healthz.json();
    assert_eq!(body["nodeEligible"], json!(true), "{body}");
    // Healthy: lastUpdated is the current time (kube-proxy's rule).
    assert_eq!(body["lastUpdated"], body["currentTime"], "{body}");
    assert!(
        body["currentTime"]
            .as_str()
            .unwrap()
            .ends_with(" +0000 UTC"),
        "{body}"
    );

    let livez = get(&node.netns, "http://127.0.0.1:10256/livez").unwrap();
    assert_eq!(livez.code, 200, "{livez:?}");
    let keys: Vec<String> = livez.json().as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["currentTime", "lastUpdated"]);
    // Only those two paths.
    let other = get(&node.netns, "http://127.0.0.1:10256/metrics").unwrap();
    assert_eq!(other.code, 404);
}
