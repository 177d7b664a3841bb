//! Address change notifications: an rtnetlink socket that joins the
//! `RTNLGRP_IPV4_IFADDR` and `RTNLGRP_IPV6_IFADDR` multicast groups, so
//! the kernel tells us when any interface gains or loses an address
//! (equivalent to `ip monitor address`).
//!
//! It only receives: the notifications say *that* something changed, and
//! the caller re-reads every address with one dump through the funnel
//! ([`crate::Links::all_addresses`]). Reading the whole set again, rather
//! than applying each notification, cannot drift: a lost notification
//! (the kernel drops them with `ENOBUFS` when our buffer is full) costs
//! one extra dump, never a wrong address set.

use futures::FutureExt;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, AsyncSocket, AsyncSocketExt, TokioSocket};

use crate::{exchange::datagram_messages, Counters, Error, Family, Result};

/// Counted kinds of received notifications (kept apart from the replies
/// to our own `GETADDR` dumps, which are counted as `NEWADDR`).
const NOTIFIED_NEWADDR: &str = "notify NEWADDR";
const NOTIFIED_DELADDR: &str = "notify DELADDR";
const NOTIFIED_OTHER: &str = "notify other";
/// The kernel dropped notifications because our receive buffer was full.
const NOTIFICATIONS_LOST: &str = "notify lost";

/// Big enough for a burst of a few thousand address notifications (each
/// about 100 bytes of payload in a skb of its own); the kernel clamps it to
/// `net.core.rmem_max`. An overflow only costs a re-read.
const RECEIVE_BUFFER: usize = 1024 * 1024;

/// A subscription to the node's address changes, in the calling thread's
/// network namespace.
pub struct AddressEvents {
    socket: TokioSocket,
    counters: Counters,
}

impl AddressEvents {
    /// Joins the IPv4 and IPv6 address groups. Subscribe *before* reading
    /// the addresses for the first time, so that no change falls between
    /// the read and the subscription.
    pub fn subscribe(counters: Counters) -> Result<AddressEvents> {
        let io = |action| {
            move |source| Error::Io {
                family: Family::Route,
                action,
                source,
            }
        };
        let mut socket = TokioSocket::new(NETLINK_ROUTE).map_err(io("socket"))?;
        socket.socket_mut().bind_auto().map_err(io("bind"))?;
        for group in [libc::RTNLGRP_IPV4_IFADDR, libc::RTNLGRP_IPV6_IFADDR] {
            socket
                .socket_ref()
                .add_membership(group)
                .map_err(io("join an address multicast group"))?;
        }
        socket
            .socket_ref()
            .set_rx_buf_sz(RECEIVE_BUFFER)
            .map_err(io("set SO_RCVBUF"))?;
        Ok(AddressEvents { socket, counters })
    }

    /// Waits until some address changed, then also takes every notification
    /// already queued behind the first one, so a burst (an interface
    /// brought up with several addresses) yields one event. Lost
    /// notifications (`ENOBUFS`) count as a change.
    pub async fn changed(&mut self) -> Result<()> {
        self.changed_except(None).await
    }

    /// [`changed`](Self::changed), but changes of the link with index
    /// `ignored` alone are no change: the caller made them itself (the
    /// service addresses on `kube-ipvs0`: binding ten thousand of them must
    /// not make ten thousand re-reads of every address).
    pub async fn changed_except(&mut self, ignored: Option<u32>) -> Result<()> {
        while !self.receive(ignored).await? {}
        // Drain what is already queued without waiting for more.
        while let Some(outcome) = self.receive(ignored).now_or_never() {
            outcome?;
        }
        Ok(())
    }

    /// One datagram of notifications, counted; whether it told of a change
    /// to a link other than `ignored`.
    async fn receive(&mut self, ignored: Option<u32>) -> Result<bool> {
        match self.socket.recv_from_full().await {
            Ok((bytes, _from)) => {
                let mut relevant = false;
                for (kind, link) in notifications(&bytes) {
                    self.counters.record_received(Family::Route, kind);
                    relevant |= link.is_none() || link != ignored;
                }
                Ok(relevant)
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                self.counters
                    .record_received(Family::Route, NOTIFICATIONS_LOST);
                Ok(true)
            }
            Err(source) => Err(Error::Io {
                family: Family::Route,
                action: "recvmsg (address notifications)",
                source,
            }),
        }
    }
}

/// The counted kind of every netlink message in a notification datagram.
pub(crate) fn notification_kinds(bytes: &[u8]) -> Vec<&'static str> {
    notifications(bytes)
        .into_iter()
        .map(|(kind, _)| kind)
        .collect()
}

/// Every netlink message in a notification datagram: its counted kind and,
/// for an address change, the index of the link it is on.
fn notifications(bytes: &[u8]) -> Vec<(&'static str, Option<u32>)> {
    datagram_messages(bytes)
        .map(|message| {
            let Ok(message) = message else {
                return ("undecodable", None);
            };
            match NetlinkMessage::<RouteNetlinkMessage>::deserialize(message) {
                Ok(NetlinkMessage {
                    payload: NetlinkPayload::InnerMessage(inner),
                    ..
                }) => match inner {
                    RouteNetlinkMessage::NewAddress(address) => {
                        (NOTIFIED_NEWADDR, Some(address.header.index))
                    }
                    RouteNetlinkMessage::DelAddress(address) => {
                        (NOTIFIED_DELADDR, Some(address.header.index))
                    }
                    _ => (NOTIFIED_OTHER, None),
                },
                Ok(_) => (NOTIFIED_OTHER, None),
                Err(_) => ("undecodable", None),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use netlink_packet_core::NetlinkHeader;

    use super::*;
    use crate::links::host_address;

    fn encoded(message: RouteNetlinkMessage) -> Vec<u8> {
        let mut message = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::InnerMessage(message),
        );
        message.finalize();
        let mut bytes = vec![0; message.buffer_len()];
        message.serialize(&mut bytes);
        bytes
    }

    #[test]
    fn every_message_of_a_datagram_is_counted_by_kind() {
        let address = host_address(3, IpAddr::V4(Ipv4Addr::new(192, 168, 1, 9)));
        let mut datagram = encoded(RouteNetlinkMessage::NewAddress(address.clone()));
        datagram.extend(encoded(RouteNetlinkMessage::DelAddress(address.clone())));
        datagram.extend(encoded(RouteNetlinkMessage::NewAddress(address)));
        assert_eq!(
            notification_kinds(&datagram),
            vec![NOTIFIED_NEWADDR, NOTIFIED_DELADDR, NOTIFIED_NEWADDR]
        );
    }

    #[test]
    fn a_truncated_message_is_counted_as_undecodable() {
        let address = host_address(3, IpAddr::V4(Ipv4Addr::new(192, 168, 1, 9)));
        let datagram = encoded(RouteNetlinkMessage::NewAddress(address));
        assert_eq!(
            notification_kinds(&datagram[..datagram.len() - 4]),
            vec!["undecodable"]
        );
        assert!(notification_kinds(&[]).is_empty());
    }
}
