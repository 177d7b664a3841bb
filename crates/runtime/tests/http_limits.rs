//! The health servers against hostile clients: many idle connections and
//! slowloris clients (a request header trickled byte by byte) must neither
//! starve `/healthz` nor keep the daemon's file descriptors.
//!
//! A test binary of its own with a single test: it counts the descriptors of
//! the whole process (/proc/self/fd), which other tests running alongside
//! would disturb.

use std::{net::SocketAddr, time::Duration};

use kipvs_runtime::{
    healthz_router,
    http_server::{serve, Limits},
    ProxyHealth,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinSet,
};

const IDLE: usize = 500;
const SLOWLORIS: usize = 100;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// One GET; the status line, or why there is none.
async fn get_status(address: SocketAddr, path: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer);
    text.lines()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| "no answer".to_owned())
}

/// Waits until the server has closed `stream` (EOF or reset).
async fn closed_by_server(mut stream: TcpStream) -> TcpStream {
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return stream,
            // A 503 for a connection over the cap: read on to the close.
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slowloris_clients_neither_starve_healthz_nor_keep_descriptors() {
    // Short timeouts so the test does not wait 5 s; the cap is the real one.
    let limits = Limits {
        header_read_timeout: Duration::from_millis(800),
        ..Limits::DEFAULT
    };
    assert_eq!(Limits::DEFAULT.header_read_timeout, Duration::from_secs(5));
    assert_eq!(Limits::DEFAULT.max_connections, 64);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let health = ProxyHealth::new(Duration::from_secs(60));
    tokio::spawn(serve(listener, healthz_router(health), limits));
    // A first answer, so everything the server opens once is open.
    assert_eq!(
        get_status(address, "/healthz").await.unwrap(),
        "HTTP/1.1 200 OK"
    );
    let baseline = open_fds();

    let mut idle = Vec::new();
    for _ in 0..IDLE {
        idle.push(TcpStream::connect(address).await.unwrap());
    }
    // Slowloris: a request line and headers, one byte every 100 ms, never
    // finished; each task gives its stream back once the server hangs up.
    let mut slow = JoinSet::new();
    for _ in 0..SLOWLORIS {
        let mut stream = TcpStream::connect(address).await.unwrap();
        slow.spawn(async move {
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
                .iter()
                .cycle()
            {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                let mut probe = [0u8; 1];
                let probed =
                    tokio::time::timeout(Duration::from_millis(1), stream.read(&mut probe)).await;
                if let Ok(Ok(0) | Err(_)) = probed {
                    break;
                }
            }
            stream
        });
    }

    // With all of them connected, /healthz still answers, and at once.
    let status = tokio::time::timeout(Duration::from_secs(1), get_status(address, "/healthz"))
        .await
        .expect("/healthz answers within 1 s");
    assert_eq!(status.unwrap(), "HTTP/1.1 200 OK");

    // After the header timeout the server has closed every one of them
    // (idle ones at the latest by the timeout, the others as they were
    // evicted): it holds no descriptor for them, only ours remain.
    let mut held = Vec::new();
    for stream in idle {
        held.push(
            tokio::time::timeout(Duration::from_secs(10), closed_by_server(stream))
                .await
                .expect("the server closes an idle connection"),
        );
    }
    while let Some(stream) = tokio::time::timeout(Duration::from_secs(10), slow.join_next())
        .await
        .expect("the server closes a slowloris connection")
    {
        held.push(stream.unwrap());
    }
    assert_eq!(held.len(), IDLE + SLOWLORIS);
    // The server's side of a closed connection may still be in its task's
    // hands for a moment after the close reached us.
    let mut server_side = isize::MAX;
    for _ in 0..50 {
        server_side = open_fds() as isize - (baseline + held.len()) as isize;
        if server_side == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server_side, 0, "descriptors the server still holds");
    drop(held);
    assert_eq!(open_fds(), baseline);
    assert_eq!(
        get_status(address, "/livez").await.unwrap(),
        "HTTP/1.1 200 OK"
    );
}
