//! Traffic: HTTP requests and TCP connections from a namespace, and the
//! pods' answers.

use std::{
    io::{self, BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
};

use super::{API, CONNECT_TIMEOUT, IO_TIMEOUT};
use crate::TestNetns;

/// What a pod's server answered: its name and the client address it saw.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Answer {
    pub pod: String,
    pub client: String,
}

impl Answer {
    fn parse(body: &str) -> io::Result<Answer> {
        let mut words = body.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(pod), Some(client), None) => Ok(Answer {
                pod: pod.to_owned(),
                client: client.to_owned(),
            }),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a pod answer: {body:?}"),
            )),
        }
    }
}

/// One HTTP GET of `/` at `addr` (`ip:port`, `[ip6]:port`) from `netns` on
/// a fresh connection; `None` when it cannot connect or gets no answer.
pub fn http_from(netns: &TestNetns, addr: &str) -> Option<Answer> {
    let (status, body) = request(netns, addr, "GET", "/", None).ok()?;
    (status == 200).then(|| Answer::parse(&body).ok()).flatten()
}

/// The answers of `count` requests ([`http_from`]) from `netns` to `addr`.
pub fn answers(netns: &TestNetns, addr: &str, count: usize) -> Vec<Option<Answer>> {
    (0..count).map(|_| http_from(netns, addr)).collect()
}

/// Whether a TCP connection from `netns` to `addr` is refused (RST or
/// ICMP port unreachable), as opposed to accepted or dropped.
pub fn tcp_refused(netns: &TestNetns, addr: &str) -> bool {
    matches!(connect(netns, addr), Err(e) if e.kind() == io::ErrorKind::ConnectionRefused)
}

/// Whether a TCP connection from `netns` to `addr` is established.
pub fn tcp_connects(netns: &TestNetns, addr: &str) -> bool {
    connect(netns, addr).is_ok()
}

fn connect(netns: &TestNetns, addr: &str) -> io::Result<TcpStream> {
    let addr: SocketAddr = addr
        .parse()
        .unwrap_or_else(|e| panic!("socket address {addr:?}: {e}"));
    netns.run(move || async move {
        let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(stream)
    })
}

/// One HTTP/1.1 request from `netns` to `addr` on a fresh connection:
/// (status, body).
pub fn request(
    netns: &TestNetns,
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> io::Result<(u16, String)> {
    let mut stream = connect(netns, addr)?;
    write_request(&mut stream, addr, method, path, body, false)?;
    read_response(&mut stream)
}

pub(super) fn api_request(
    lan: &TestNetns,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> io::Result<(u16, String)> {
    request(lan, API, method, path, body)
}

fn write_request(
    stream: &mut TcpStream,
    host: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    keep_alive: bool,
) -> io::Result<()> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut text =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: {connection}\r\n");
    if let Some(body) = body {
        text.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    text.push_str("\r\n");
    text.push_str(body.unwrap_or(""));
    stream.write_all(text.as_bytes())
}

/// Reads one response: the status code and the body (Content-Length
/// bytes, or everything up to the end of the stream without one).
fn read_response(stream: &mut TcpStream) -> io::Result<(u16, String)> {
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    if reader.read_line(&mut status_line)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no response"));
    }
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("status line {status_line:?}"),
            )
        })?;
    let mut length = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "headers cut"));
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body)?;
        }
        None => {
            reader.read_to_end(&mut body)?;
        }
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A long-lived HTTP/1.1 connection that asks again and again on the same
/// TCP connection. Dropping it closes with RST (SO_LINGER 0), so IPVS
/// forgets the connection within seconds instead of keeping it in
/// TIME_WAIT for two minutes.
pub struct LongConnection {
    stream: TcpStream,
    host: String,
}

impl LongConnection {
    pub fn open(netns: &TestNetns, addr: &str) -> io::Result<LongConnection> {
        let target: SocketAddr = addr
            .parse()
            .unwrap_or_else(|e| panic!("socket address {addr:?}: {e}"));
        let stream = netns.run(move || async move {
            let stream =
                tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(target))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect"))??;
            stream.set_zero_linger()?;
            let stream = stream.into_std()?;
            stream.set_nonblocking(false)?;
            stream.set_read_timeout(Some(IO_TIMEOUT))?;
            stream.set_write_timeout(Some(IO_TIMEOUT))?;
            Ok::<_, io::Error>(stream)
        })?;
        Ok(LongConnection {
            stream,
            host: addr.to_owned(),
        })
    }

    /// One more request on this connection.
    pub fn ask(&mut self) -> io::Result<Answer> {
        write_request(&mut self.stream, &self.host, "GET", "/", None, true)?;
        let (status, body) = read_response(&mut self.stream)?;
        if status != 200 {
            return Err(io::Error::other(format!("status {status}: {body}")));
        }
        Answer::parse(&body)
    }

    /// Closes the connection with RST.
    pub fn reset(self) {
        drop(self.stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_name_and_client() {
        assert_eq!(
            Answer::parse("a1 192.168.50.100\n").unwrap(),
            Answer {
                pod: "a1".into(),
                client: "192.168.50.100".into()
            }
        );
        assert!(Answer::parse("<html>").is_err());
    }
}
