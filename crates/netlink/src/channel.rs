//! The funnel: the only place that writes to or reads from a netlink socket.
//!
//! Every request of every family goes through [`Channel::exchange`], which
//! packs many requests into one `sendmsg`, collects every ack, error and dump
//! part, classifies failures and counts each message both ways.

use std::{fmt::Debug, time::Duration};

use netlink_packet_core::{NetlinkDeserializable, NetlinkSerializable};
use netlink_sys::{AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket};

use crate::{
    exchange::{encode, Exchange},
    Counters, Error, Family, MessageKind, Request, Result,
};

/// How long we wait for the kernel's next datagram while requests are
/// outstanding. The kernel answers netlink requests synchronously, so
/// silence this long means a reply was lost.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// A receive buffer large enough for the acks of a full 64 KiB datagram of
/// small requests and for large dump parts; the kernel clamps it to
/// `net.core.rmem_max`.
const RECEIVE_BUFFER: usize = 4 * 1024 * 1024;

/// One netlink socket, bound to one family.
pub struct Channel {
    family: Family,
    socket: TokioSocket,
    next_seq: u32,
    counters: Counters,
}

impl Channel {
    /// Opens a socket for `protocol` (`NETLINK_GENERIC`, `NETLINK_NETFILTER`,
    /// `NETLINK_ROUTE`) in the calling thread's network namespace.
    pub fn open(family: Family, protocol: isize, counters: Counters) -> Result<Channel> {
        let io = |action| {
            move |source| Error::Io {
                family,
                action,
                source,
            }
        };
        let mut socket = TokioSocket::new(protocol).map_err(io("socket"))?;
        socket.socket_mut().bind_auto().map_err(io("bind"))?;
        socket
            .socket_mut()
            .connect(&SocketAddr::new(0, 0))
            .map_err(io("connect"))?;
        // The kernel's error text makes failures clear. Acks are not capped:
        // a successful request's ack carries only its header anyway, and a
        // failed one's full echo tells which ipset element failed.
        socket
            .socket_ref()
            .set_ext_ack(true)
            .map_err(io("set NETLINK_EXT_ACK"))?;
        socket
            .socket_ref()
            .set_rx_buf_sz(RECEIVE_BUFFER)
            .map_err(io("set SO_RCVBUF"))?;
        Ok(Channel {
            family,
            socket,
            next_seq: 1,
            counters,
        })
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Sends every request and returns each one's outcome, in order: the
    /// messages the kernel answered with (dump parts, a direct reply; empty
    /// for a plain ack) or why it failed. A failed request does not stop the
    /// others (except inside an nf_tables batch, which the kernel itself
    /// makes all-or-nothing).
    pub async fn exchange<T>(&mut self, requests: Vec<Request<T>>) -> Vec<Result<Vec<T>>>
    where
        T: NetlinkSerializable + NetlinkDeserializable + MessageKind + Clone + Debug,
    {
        let (encoded, slots) = encode(self.family, &requests, &mut self.next_seq, &self.counters);
        let mut exchange = Exchange::<T>::new(self.family, &slots);
        for (datagram, seqs) in &encoded.datagrams {
            self.counters.record_sendmsg(self.family);
            if let Err(source) = self.socket.send(datagram).await {
                // Nothing of this datagram or the ones after it reached the
                // kernel.
                exchange.abandon(|family, _| Error::Io {
                    family,
                    action: "sendmsg",
                    source: copy_io_error(&source),
                });
                break;
            }
            // Once answers are lost, every outstanding request has been
            // abandoned (including those of datagrams not sent yet): sending
            // them anyway would apply changes the caller is told failed.
            let mut gave_up = false;
            while !exchange.settled(seqs) {
                match tokio::time::timeout(ANSWER_TIMEOUT, self.socket.recv_from_full()).await {
                    Ok(Ok((bytes, _from))) => {
                        exchange.on_datagram(&bytes, &self.counters);
                        continue;
                    }
                    Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        // The kernel dropped replies: we cannot tell which
                        // requests they answered, so every one still waiting
                        // is retryable.
                        exchange.abandon(|family, _| Error::Overrun { family });
                    }
                    Ok(Err(source)) => {
                        exchange.abandon(|family, _| Error::Io {
                            family,
                            action: "recvmsg",
                            source: copy_io_error(&source),
                        });
                    }
                    Err(_elapsed) => {
                        let seconds = ANSWER_TIMEOUT.as_secs();
                        exchange.abandon(|family, kind| Error::NoAnswer {
                            family,
                            kind,
                            seconds,
                        });
                    }
                }
                gave_up = true;
            }
            if gave_up {
                break;
            }
        }
        exchange.finish()
    }

    /// One request, one outcome.
    pub async fn request<T>(&mut self, request: Request<T>) -> Result<Vec<T>>
    where
        T: NetlinkSerializable + NetlinkDeserializable + MessageKind + Clone + Debug,
    {
        self.exchange(vec![request])
            .await
            .pop()
            .expect("one request, one outcome")
    }
}

/// `io::Error` is not `Clone`; every abandoned request gets its own copy.
fn copy_io_error(e: &std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(errno) => std::io::Error::from_raw_os_error(errno),
        None => std::io::Error::new(e.kind(), e.to_string()),
    }
}
