//! Conntrack over nfnetlink: find and delete flows, for the stale UDP
//! entries left behind when an endpoint goes away (a UDP client keeps
//! sending to the dead backend through its conntrack entry otherwise).
//!
//! The algorithm is kube-proxy's (and vishvananda/netlink's
//! `ConntrackDeleteFilters`): dump the table once, match in user space,
//! delete each match by its original tuple, treating ENOENT as success.

use std::net::IpAddr;

use netlink_packet_core::{DecodeError, NetlinkDeserializable, NetlinkHeader, NetlinkSerializable};
use netlink_packet_netfilter::{
    conntrack::{ConntrackAttribute, ConntrackMessage, IPTuple, ProtoTuple, Protocol, Tuple},
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};
use netlink_sys::protocols::NETLINK_NETFILTER;

use crate::{Channel, Counters, ErrorClass, Family, MessageKind, Request, Result};

/// One direction of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowTuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

/// A conntrack entry, as much of it as the proxy needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// IP protocol number (17 for UDP).
    pub protocol: u8,
    pub original: FlowTuple,
    pub reply: FlowTuple,
}

/// Which flows to select; `None` matches anything. kube-proxy's three uses:
/// UDP to a service IP (orig dst), UDP to a NodePort (orig dport), UDP
/// answered by a removed endpoint (reply src); kube-ipvs combines them:
/// a virtual service's flows (orig dst and dport), or only those a removed
/// real server answered (plus reply src and sport).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowFilter {
    pub protocol: Option<u8>,
    pub original_dst: Option<IpAddr>,
    pub original_dport: Option<u16>,
    pub reply_src: Option<IpAddr>,
    pub reply_sport: Option<u16>,
}

impl FlowFilter {
    pub fn matches(&self, flow: &Flow) -> bool {
        self.protocol.is_none_or(|p| p == flow.protocol)
            && self.original_dst.is_none_or(|d| d == flow.original.dst)
            && self.original_dport.is_none_or(|p| p == flow.original.dport)
            && self.reply_src.is_none_or(|s| s == flow.reply.src)
            && self.reply_sport.is_none_or(|p| p == flow.reply.sport)
    }
}

/// `NFNL_SUBSYS_CTNETLINK`: the nfnetlink subsystem of conntrack messages.
const NFNL_SUBSYS_CTNETLINK: u8 = 1;

/// A message of the conntrack socket: a [`NetfilterMessage`] of the
/// ctnetlink subsystem only. `netlink-packet-netfilter` parses every
/// nfnetlink subsystem it knows, and its nf_tables parsers panic on some
/// malformed attributes (an attribute shorter than its header); this socket
/// only asks conntrack questions, so a message of any other subsystem is
/// refused before that parser sees it.
#[derive(Debug, Clone)]
pub(crate) struct CtMessage(pub NetfilterMessage);

impl NetlinkSerializable for CtMessage {
    fn message_type(&self) -> u16 {
        self.0.message_type()
    }
    fn buffer_len(&self) -> usize {
        NetlinkSerializable::buffer_len(&self.0)
    }
    fn serialize(&self, buffer: &mut [u8]) {
        self.0.serialize(buffer)
    }
}

impl NetlinkDeserializable for CtMessage {
    type Error = DecodeError;
    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, DecodeError> {
        let subsystem = (header.message_type >> 8) as u8;
        if subsystem != NFNL_SUBSYS_CTNETLINK {
            return Err(format!(
                "a message of nfnetlink subsystem {subsystem} on the conntrack socket"
            )
            .into());
        }
        NetfilterMessage::deserialize(header, payload).map(CtMessage)
    }
}

/// Conntrack client.
pub struct Conntrack {
    channel: Channel,
}

impl Conntrack {
    pub fn open(counters: Counters) -> Result<Conntrack> {
        Ok(Conntrack {
            channel: Channel::open(Family::Conntrack, NETLINK_NETFILTER, counters)?,
        })
    }

    /// Every flow of one address family that `filter` selects, from one dump
    /// (equivalent to `conntrack -L -f ipv4 -p udp …`).
    pub async fn flows(&mut self, ipv6: bool, filter: &FlowFilter) -> Result<Vec<Flow>> {
        let family = if ipv6 {
            NetfilterProtoFamily::IPv6
        } else {
            NetfilterProtoFamily::IPv4
        };
        let dump = CtMessage(NetfilterMessage::new(
            NetfilterHeader::new(family, 0, 0),
            ConntrackMessage::Get(vec![]),
        ));
        let replies = self.channel.request(Request::dump(dump, 0)).await?;
        Ok(replies
            .iter()
            .filter_map(|reply| flow_of(&reply.0))
            .filter(|flow| filter.matches(flow))
            .collect())
    }

    /// Deletes each flow by its original tuple, pipelined; a flow that is
    /// already gone counts as deleted (equivalent to `conntrack -D …`).
    pub async fn delete(&mut self, flows: &[Flow]) -> Vec<Result<()>> {
        let requests = flows
            .iter()
            .map(|flow| {
                let family = match flow.original.src {
                    IpAddr::V4(_) => NetfilterProtoFamily::IPv4,
                    IpAddr::V6(_) => NetfilterProtoFamily::IPv6,
                };
                let tuple = ConntrackAttribute::CtaTupleOrig(tuple_attributes(
                    flow.protocol,
                    &flow.original,
                ));
                let message = NetfilterMessage::new(
                    NetfilterHeader::new(family, 0, 0),
                    ConntrackMessage::Delete(vec![tuple]),
                );
                Request::ack(CtMessage(message), 0)
            })
            .collect();
        self.channel
            .exchange(requests)
            .await
            .into_iter()
            .map(|outcome| match outcome {
                Err(e) if e.class() != ErrorClass::NotFound => Err(e),
                _ => Ok(()),
            })
            .collect()
    }

    /// Dumps, filters and deletes in one call; returns how many flows went.
    pub async fn delete_matching(&mut self, ipv6: bool, filter: &FlowFilter) -> Result<usize> {
        self.delete_matching_any(ipv6, std::slice::from_ref(filter))
            .await
    }

    /// Like [`Conntrack::delete_matching`] for the flows any of `filters`
    /// selects, still from one dump (kube-proxy's fix for a dump per
    /// filter, kubernetes#135511). No filter: nothing is read.
    pub async fn delete_matching_any(
        &mut self,
        ipv6: bool,
        filters: &[FlowFilter],
    ) -> Result<usize> {
        if filters.is_empty() {
            return Ok(0);
        }
        let flows: Vec<Flow> = self
            .flows(ipv6, &FlowFilter::default())
            .await?
            .into_iter()
            .filter(|flow| filters.iter().any(|filter| filter.matches(flow)))
            .collect();
        let mut deleted = 0;
        for outcome in self.delete(&flows).await {
            outcome?;
            deleted += 1;
        }
        Ok(deleted)
    }
}

pub(crate) fn tuple_attributes(protocol: u8, tuple: &FlowTuple) -> Vec<Tuple> {
    vec![
        Tuple::Ip(vec![
            IPTuple::SourceAddress(tuple.src),
            IPTuple::DestinationAddress(tuple.dst),
        ]),
        Tuple::Proto(vec![
            ProtoTuple::Protocol(Protocol::from(protocol)),
            ProtoTuple::SourcePort(tuple.sport),
            ProtoTuple::DestinationPort(tuple.dport),
        ]),
    ]
}

pub(crate) fn flow_of(message: &NetfilterMessage) -> Option<Flow> {
    let NetfilterMessageInner::Conntrack(ConntrackMessage::New(attributes)) = &message.inner else {
        return None;
    };
    let mut original = None;
    let mut reply = None;
    for attribute in attributes {
        match attribute {
            ConntrackAttribute::CtaTupleOrig(t) => original = flow_tuple(t),
            ConntrackAttribute::CtaTupleReply(t) => reply = flow_tuple(t),
            _ => {}
        }
    }
    let (protocol, original) = original?;
    let (_, reply) = reply?;
    Some(Flow {
        protocol,
        original,
        reply,
    })
}

fn flow_tuple(tuples: &[Tuple]) -> Option<(u8, FlowTuple)> {
    let (mut src, mut dst, mut sport, mut dport, mut protocol) = (None, None, 0, 0, None);
    for tuple in tuples {
        match tuple {
            Tuple::Ip(ips) => {
                for ip in ips {
                    match ip {
                        IPTuple::SourceAddress(a) => src = Some(*a),
                        IPTuple::DestinationAddress(a) => dst = Some(*a),
                        _ => {}
                    }
                }
            }
            Tuple::Proto(parts) => {
                for part in parts {
                    match part {
                        ProtoTuple::Protocol(p) => protocol = Some(u8::from(*p)),
                        ProtoTuple::SourcePort(p) => sport = *p,
                        ProtoTuple::DestinationPort(p) => dport = *p,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some((
        protocol?,
        FlowTuple {
            src: src?,
            dst: dst?,
            sport,
            dport,
        },
    ))
}

impl MessageKind for CtMessage {
    fn kind(&self) -> &'static str {
        match &self.0.inner {
            NetfilterMessageInner::Conntrack(ConntrackMessage::New(_)) => "CT_NEW",
            NetfilterMessageInner::Conntrack(ConntrackMessage::Get(_)) => "CT_GET",
            NetfilterMessageInner::Conntrack(ConntrackMessage::Delete(_)) => "CT_DELETE",
            _ => "OTHER",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(dst: &str, dport: u16, reply_src: &str) -> Flow {
        Flow {
            protocol: 17,
            original: FlowTuple {
                src: "10.0.0.1".parse().unwrap(),
                dst: dst.parse().unwrap(),
                sport: 40000,
                dport,
            },
            reply: FlowTuple {
                src: reply_src.parse().unwrap(),
                dst: "10.0.0.1".parse().unwrap(),
                sport: 53,
                dport: 40000,
            },
        }
    }

    #[test]
    fn filter_selects_by_service_ip_nodeport_and_endpoint() {
        let a = flow("10.96.0.10", 53, "10.244.1.2");
        let b = flow("10.96.0.10", 53, "10.244.1.3");
        let c = flow("192.168.1.5", 30053, "10.244.1.2");
        let by_endpoint = FlowFilter {
            protocol: Some(17),
            reply_src: Some("10.244.1.2".parse().unwrap()),
            ..Default::default()
        };
        assert!(by_endpoint.matches(&a) && !by_endpoint.matches(&b) && by_endpoint.matches(&c));
        let by_port = FlowFilter {
            original_dport: Some(30053),
            ..Default::default()
        };
        assert!(!by_port.matches(&a) && by_port.matches(&c));
        let tcp_only = FlowFilter {
            protocol: Some(6),
            ..Default::default()
        };
        assert!(!tcp_only.matches(&a));
        let answered_by_port = FlowFilter {
            reply_src: Some("10.244.1.2".parse().unwrap()),
            reply_sport: Some(53),
            ..Default::default()
        };
        let mut other_port = a;
        other_port.reply.sport = 5353;
        assert!(answered_by_port.matches(&a) && !answered_by_port.matches(&other_port));
    }

    #[test]
    fn a_dumped_entry_becomes_a_flow_and_its_tuple_round_trips() {
        let f = flow("10.96.0.10", 53, "10.244.1.2");
        let message = NetfilterMessage::new(
            NetfilterHeader::new(NetfilterProtoFamily::IPv4, 0, 0),
            ConntrackMessage::New(vec![
                ConntrackAttribute::CtaTupleOrig(tuple_attributes(17, &f.original)),
                ConntrackAttribute::CtaTupleReply(tuple_attributes(17, &f.reply)),
                ConntrackAttribute::CtaTimeout(30),
            ]),
        );
        assert_eq!(flow_of(&message), Some(f));
    }

    /// Found by the `conntrack_reply` fuzz target: an nf_tables NEWSET
    /// (subsystem 10) whose set-element attribute is shorter than an
    /// attribute header made `netlink-packet-netfilter` 0.4.0 panic
    /// (subtract with overflow in `NlaBuffer::value_length`).
    const NFTABLES_NEWSET_SHORT_ATTRIBUTE: [u8; 62] = [
        0x33, 0x00, 0x00, 0x00, 0x0a, 0x0a, 0x2a, 0x00, 0x02, 0x00, 0x00, 0x00, 0x08, 0x00, 0x02,
        0x00, 0x7f, 0x00, 0x00, 0x01, 0x1c, 0x00, 0x11, 0x00, 0x00, 0x00, 0x01, 0x00, 0x5e, 0x5e,
        0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e,
        0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x00, 0xea, 0x00, 0x91, 0x89, 0x00, 0x00, 0x08,
        0x00, 0x03,
    ];

    #[test]
    fn a_message_of_another_nfnetlink_subsystem_is_refused_not_parsed() {
        use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
        let err =
            NetlinkMessage::<CtMessage>::deserialize(&NFTABLES_NEWSET_SHORT_ATTRIBUTE).unwrap_err();
        assert!(err.to_string().contains("subsystem 10"), "{err}");
        // Through the funnel, as the dump reads it: the dump fails, no panic.
        assert_eq!(
            crate::fuzzing::conntrack_datagram(&NFTABLES_NEWSET_SHORT_ATTRIBUTE),
            0
        );
        // A conntrack message still parses.
        let f = flow("10.96.0.10", 53, "10.244.1.2");
        let mut message = NetlinkMessage::new(
            netlink_packet_core::NetlinkHeader::default(),
            NetlinkPayload::InnerMessage(CtMessage(NetfilterMessage::new(
                NetfilterHeader::new(NetfilterProtoFamily::IPv4, 0, 0),
                ConntrackMessage::New(vec![
                    ConntrackAttribute::CtaTupleOrig(tuple_attributes(17, &f.original)),
                    ConntrackAttribute::CtaTupleReply(tuple_attributes(17, &f.reply)),
                ]),
            ))),
        );
        message.finalize();
        let mut bytes = vec![0; message.buffer_len()];
        message.serialize(&mut bytes);
        let parsed = NetlinkMessage::<CtMessage>::deserialize(&bytes).unwrap();
        let NetlinkPayload::InnerMessage(inner) = parsed.payload else {
            panic!("not a conntrack message")
        };
        assert_eq!(flow_of(&inner.0), Some(f));
    }
}
