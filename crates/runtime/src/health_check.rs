//! Health-check node ports (kube-proxy's `service_health.go`): for each
//! `externalTrafficPolicy: Local` load balancer with a
//! `healthCheckNodePort`, an HTTP listener on that port, on every address
//! of both families, that tells the cloud load balancer whether this node
//! has a ready endpoint of the service. Any path, any method: 200 when the
//! node has local endpoints and the proxy is healthy, else 503, with a
//! JSON body naming the service.
//!
//! After each sync the loop hands over what the desired state asks for;
//! listeners are opened and closed to match, and a listener whose count
//! changed is updated in place, never re-bound.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, PoisonError, RwLock},
};

use axum::{extract::State, http::StatusCode, response::Response, Router};
use kipvs_planner::HealthCheck;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::{
    health::{json_response, listen, ProxyHealth},
    http_server::{self, Limits},
};

/// What one listener answers from: its service and count, replaced in
/// place after each sync.
struct Shared {
    check: RwLock<HealthCheck>,
    proxy: ProxyHealth,
}

struct Listener {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

/// The open health-check listeners, by port.
pub struct HealthCheckServers {
    proxy: ProxyHealth,
    listeners: BTreeMap<u16, Listener>,
    /// Ports that could not be listened on, with the warning already given
    /// (service and error), so a failure that persists is logged once.
    failing: BTreeMap<u16, String>,
}

impl HealthCheckServers {
    pub fn new(proxy: ProxyHealth) -> HealthCheckServers {
        HealthCheckServers {
            proxy,
            listeners: BTreeMap::new(),
            failing: BTreeMap::new(),
        }
    }

    /// The ports listened on.
    pub fn ports(&self) -> Vec<u16> {
        self.listeners.keys().copied().collect()
    }

    /// Makes the listeners match `wanted`. A port that cannot be listened
    /// on (another process holds it) gets one warning naming the service
    /// and the error, and is tried again on the next call.
    pub async fn update(&mut self, wanted: &BTreeMap<u16, HealthCheck>) {
        let gone: Vec<u16> = self
            .listeners
            .keys()
            .filter(|port| !wanted.contains_key(port))
            .copied()
            .collect();
        for port in gone {
            let listener = self.listeners.remove(&port).expect("listed above");
            listener.task.abort();
            // The socket is closed only once the task is gone: wait for it,
            // so the port is free again when this returns. Its open
            // connections end with it (idle keep-alive ones at once), as
            // Go's `Server.Close` ends kube-proxy's.
            let _ = listener.task.await;
            info!(port, "closed health-check node port");
        }
        self.failing.retain(|port, _| wanted.contains_key(port));
        for (&port, check) in wanted {
            if let Some(listener) = self.listeners.get(&port) {
                *listener
                    .shared
                    .check
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = check.clone();
                continue;
            }
            self.open(port, check);
        }
    }

    fn open(&mut self, port: u16, check: &HealthCheck) {
        let service = format!("{}/{}", check.namespace, check.name);
        let listener = match listen_everywhere(port) {
            Ok(listener) => listener,
            Err(error) => {
                let warning = format!("{service}: {error}");
                if self.failing.get(&port) != Some(&warning) {
                    warn!(
                        %service,
                        port,
                        %error,
                        "cannot listen on the health-check node port; retrying on later syncs"
                    );
                    self.failing.insert(port, warning);
                } else {
                    debug!(%service, port, %error, "health-check node port still unavailable");
                }
                return;
            }
        };
        self.failing.remove(&port);
        let shared = Arc::new(Shared {
            check: RwLock::new(check.clone()),
            proxy: self.proxy.clone(),
        });
        let router = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(http_server::serve(listener, router, Limits::DEFAULT));
        info!(%service, port, "listening on health-check node port");
        self.listeners.insert(port, Listener { shared, task });
    }
}

impl Drop for HealthCheckServers {
    fn drop(&mut self) {
        for listener in self.listeners.values() {
            listener.task.abort();
        }
    }
}

/// One socket for both families (`[::]:port` with `IPV6_V6ONLY` off, as
/// Go's listener on `0.0.0.0` is); IPv4 only where IPv6 is disabled.
fn listen_everywhere(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    match listen(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))) {
        Err(error) if error.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
            listen(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
        }
        outcome => outcome,
    }
}

async fn answer(State(shared): State<Arc<Shared>>) -> Response {
    let check = shared
        .check
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let (code, body) = service_health_answer(&check, shared.proxy.is_healthy());
    json_response(code, body)
}

/// kube-proxy's answer, byte for byte: 200 only with local endpoints and a
/// healthy proxy; the body indented with tabs as its dedented template is.
fn service_health_answer(check: &HealthCheck, proxy_healthy: bool) -> (StatusCode, String) {
    let code = if check.local_endpoints > 0 && proxy_healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let quote = |text: &str| serde_json::Value::from(text).to_string();
    let body = format!(
        "{{\n\t\"service\": {{\n\t\t\"namespace\": {},\n\t\t\"name\": {}\n\t}},\n\t\"localEndpoints\": {},\n\t\"serviceProxyHealthy\": {proxy_healthy}\n}}",
        quote(&check.namespace),
        quote(&check.name),
        check.local_endpoints,
    );
    (code, body)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{json, Value};

    use super::*;

    fn check(local_endpoints: usize) -> HealthCheck {
        HealthCheck {
            namespace: "default".to_owned(),
            name: "lb".to_owned(),
            local_endpoints,
        }
    }

    #[test]
    fn answer_is_200_with_local_endpoints_and_503_without() {
        let (code, body) = service_health_answer(&check(2), true);
        assert_eq!(code, StatusCode::OK);
        assert_eq!(
            body,
            "{\n\t\"service\": {\n\t\t\"namespace\": \"default\",\n\t\t\"name\": \"lb\"\n\t},\n\t\"localEndpoints\": 2,\n\t\"serviceProxyHealthy\": true\n}"
        );
        let (code, body) = service_health_answer(&check(0), true);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({"service": {"namespace": "default", "name": "lb"}, "localEndpoints": 0, "serviceProxyHealthy": true})
        );
    }

    #[test]
    fn an_unhealthy_proxy_answers_503_even_with_local_endpoints() {
        let (code, body) = service_health_answer(&check(1), false);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["serviceProxyHealthy"], json!(false));
        assert_eq!(body["localEndpoints"], json!(1));
    }

    /// A GET on a new connection; returns the status line, the headers
    /// lowercased and the body.
    async fn get(port: u16, path: &str) -> (String, Vec<String>, String) {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        request(&mut stream, path, "close").await
    }

    /// One raw HTTP/1.1 GET on `stream`, read up to the end of its body
    /// (by Content-Length).
    async fn request(
        stream: &mut tokio::net::TcpStream,
        path: &str,
        connection: &str,
    ) -> (String, Vec<String>, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: {connection}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            raw.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&raw).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let mut lines = head.lines();
                let status = lines.next().unwrap().to_owned();
                let headers: Vec<String> = lines.map(str::to_ascii_lowercase).collect();
                let length: usize = headers
                    .iter()
                    .find_map(|h| h.strip_prefix("content-length: "))
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    return (status, headers, body.to_owned());
                }
            }
            assert!(n > 0, "connection closed mid-answer: {text:?}");
        }
    }

    /// A free port: bound by the kernel, then released.
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test]
    async fn listeners_follow_the_wanted_ports_and_counts_update_in_place() {
        let port = free_port();
        let mut servers = HealthCheckServers::new(ProxyHealth::new(Duration::from_secs(60)));
        servers.update(&BTreeMap::from([(port, check(0))])).await;
        assert_eq!(servers.ports(), vec![port]);
        let (status, headers, body) = get(port, "/anything").await;
        assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
        assert!(headers.contains(&"content-type: application/json".to_owned()));
        assert!(headers.contains(&"x-content-type-options: nosniff".to_owned()));
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["localEndpoints"],
            json!(0)
        );

        let task_before = servers.listeners[&port].task.id();
        servers.update(&BTreeMap::from([(port, check(1))])).await;
        assert_eq!(servers.listeners[&port].task.id(), task_before, "re-bound");
        let (status, _, body) = get(port, "/").await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["localEndpoints"],
            json!(1)
        );

        // A probe connection kept open across the service's removal.
        let mut kept = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (status, _, _) = request(&mut kept, "/", "keep-alive").await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        servers.update(&BTreeMap::new()).await;
        assert!(servers.ports().is_empty());
        // Closing the listener ends its open connections too (as Go's
        // `Server.Close` does): the kept probe connection reads end-of-file.
        {
            use tokio::io::AsyncReadExt;
            let mut rest = Vec::new();
            let read = kept.read_to_end(&mut rest).await;
            assert!(read.is_err() || rest.is_empty(), "{rest:?}");
        }
        assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err());
    }

    #[tokio::test]
    async fn a_port_in_use_is_skipped_and_retried() {
        let holder = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = holder.local_addr().unwrap().port();
        let mut servers = HealthCheckServers::new(ProxyHealth::new(Duration::from_secs(60)));
        let wanted = BTreeMap::from([(port, check(1))]);
        servers.update(&wanted).await;
        assert!(servers.ports().is_empty());
        assert_eq!(servers.failing.len(), 1);
        assert!(servers.failing[&port].starts_with("default/lb: "));
        drop(holder);
        servers.update(&wanted).await;
        assert_eq!(servers.ports(), vec![port]);
        assert!(servers.failing.is_empty());
        let (status, _, _) = get(port, "/healthz").await;
        assert_eq!(status, "HTTP/1.1 200 OK");
    }
}
