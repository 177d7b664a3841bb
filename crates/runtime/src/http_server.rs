//! The one way kube-ipvs serves HTTP (`/healthz`, `/livez` and the
//! health-check node ports): an axum router behind hyper's HTTP/1 connection
//! builder, with limits so that no client can starve the proxy.
//!
//! Any local process, and for the node ports any client that reaches the
//! node, can open connections. Without limits each one is a task and a file
//! descriptor held forever: a few hundred idle connections made `/healthz`
//! time out and left the daemon unable to open sockets or files. Here:
//! - a request's header must arrive within `header_read_timeout` of the
//!   connection opening or of the previous answer (hyper restarts the timer
//!   between keep-alive requests, so this is also the idle timeout);
//! - at most `max_connections` connections per listener; at the cap, the
//!   connection that has waited longest without sending a request is closed
//!   to make room (so idle and slow clients cannot lock out a probe), and
//!   when every connection is inside a request the new one gets a 503;
//! - the header is bounded (`max_header_bytes`, `max_headers`) and a request
//!   announcing a body (none of these endpoints reads one) larger than
//!   `max_body_bytes`, or chunked, gets a 413 and the connection closes.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::Duration,
};

use axum::{
    body::Body,
    http::{header, Request, Response, StatusCode},
    Router,
};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::Notify, task::JoinSet};
use tower::Service;
use tracing::debug;

/// The limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    /// hyper's read buffer, which bounds the request line and headers
    /// (hyper's minimum is 8 KiB).
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: u64,
}

impl Limits {
    /// What the daemon serves with.
    pub const DEFAULT: Limits = Limits {
        header_read_timeout: Duration::from_secs(5),
        max_connections: 64,
        max_header_bytes: 8 * 1024,
        max_headers: 32,
        max_body_bytes: 1024,
    };
}

/// How long to wait after `accept` fails (out of file descriptors, ...)
/// before accepting again, instead of spinning.
const ACCEPT_RETRY: Duration = Duration::from_millis(200);

/// What the server knows of one open connection.
struct Connection {
    /// Set while hyper has handed a request to the router and the answer
    /// is not produced yet: such a connection is not evicted.
    in_request: AtomicBool,
    close: Notify,
}

/// Open connections by accept order, so the oldest comes first.
#[derive(Default)]
struct Connections {
    next_id: u64,
    open: BTreeMap<u64, Arc<Connection>>,
}

/// The 503 a connection over the cap gets, written without waiting.
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// Serves `router` on `listener` within `limits` until the future is
/// dropped (which also closes every connection it accepted).
pub async fn serve(listener: TcpListener, router: Router, limits: Limits) {
    let connections = Arc::new(Mutex::new(Connections::default()));
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                debug!(%error, "accept failed; retrying");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let admitted = {
            let mut table = connections.lock().unwrap_or_else(PoisonError::into_inner);
            if table.open.len() >= limits.max_connections {
                let idle = table
                    .open
                    .iter()
                    .find(|(_, c)| !c.in_request.load(Ordering::Acquire))
                    .map(|(id, _)| *id);
                if let Some(connection) = idle.and_then(|id| table.open.remove(&id)) {
                    connection.close.notify_one();
                }
            }
            if table.open.len() < limits.max_connections {
                let id = table.next_id;
                table.next_id += 1;
                let connection = Arc::new(Connection {
                    in_request: AtomicBool::new(false),
                    close: Notify::new(),
                });
                table.open.insert(id, Arc::clone(&connection));
                Some((id, connection))
            } else {
                None
            }
        };
        let Some((id, connection)) = admitted else {
            let _ = stream.try_write(BUSY);
            continue;
        };
        let router = router.clone();
        let connections = Arc::clone(&connections);
        tasks.spawn(async move {
            serve_connection(stream, router, &connection, limits).await;
            connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .open
                .remove(&id);
        });
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    connection: &Arc<Connection>,
    limits: Limits,
) {
    let state = Arc::clone(connection);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let state = Arc::clone(&state);
        let mut router = router.clone();
        async move {
            if let Some(refusal) = refuse_body(&request, limits.max_body_bytes) {
                return Ok::<_, Infallible>(refusal);
            }
            state.in_request.store(true, Ordering::Release);
            // A Router is always ready: `call` without `poll_ready` is fine.
            let response = router.call(request.map(Body::new)).await;
            state.in_request.store(false, Ordering::Release);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers);
    let served = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        outcome = served => {
            if let Err(error) = outcome {
                debug!(%error, "HTTP connection ended");
            }
        }
        () = connection.close.notified() => debug!("HTTP connection closed to make room"),
    }
}

/// A 413 for a request announcing a body over `max` bytes or a chunked one.
fn refuse_body<B>(request: &Request<B>, max: u64) -> Option<Response<Body>> {
    let headers = request.headers();
    let too_long = headers
        .get(header::CONTENT_LENGTH)
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .is_none_or(|len| len > max)
        })
        .unwrap_or(false);
    if !too_long && !headers.contains_key(header::TRANSFER_ENCODING) {
        return None;
    }
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    Some(response)
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };

    use super::*;
    use crate::ProxyHealth;

    #[tokio::test]
    async fn oversized_headers_and_bodies_are_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let health = ProxyHealth::new(Duration::from_secs(60));
        tokio::spawn(serve(
            listener,
            crate::health::healthz_router(health),
            Limits::DEFAULT,
        ));

        let raw = |request: String| async move {
            let mut stream = TcpStream::connect(address).await.unwrap();
            let _ = stream.write_all(request.as_bytes()).await;
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
            String::from_utf8_lossy(&answer)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        };
        let big_header = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(64 * 1024)
        );
        assert_eq!(
            raw(big_header).await,
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
        let many_headers = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n",
            (0..100)
                .map(|i| format!("X-{i}: y\r\n"))
                .collect::<String>()
        );
        assert_eq!(
            raw(many_headers).await,
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
        let body =
            "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\nabc".to_owned();
        assert_eq!(raw(body).await, "HTTP/1.1 413 Payload Too Large");
        let chunked =
            "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                .to_owned();
        assert_eq!(raw(chunked).await, "HTTP/1.1 413 Payload Too Large");
        let small =
            "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
                .to_owned();
        assert_eq!(raw(small).await, "HTTP/1.1 200 OK");
    }
}
