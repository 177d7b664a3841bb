//! Links and addresses over rtnetlink: the `kube-ipvs0` dummy link that
//! carries every service address, and the node's own addresses.
//!
//! Messages are built with `rtnetlink`'s builders and `netlink-packet-route`'s
//! types, but sent through our funnel so they are pipelined and counted like
//! everything else.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::{
    address::{AddressAttribute, AddressMessage},
    link::{LinkAttribute, LinkMessage},
    RouteNetlinkMessage,
};
use netlink_sys::protocols::NETLINK_ROUTE;
use rtnetlink::{AddressMessageBuilder, LinkDummy, LinkUnspec};

use crate::{Channel, Counters, Error, ErrorClass, Family, MessageKind, Request, Result};

/// An address configured on some interface of this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceAddress {
    pub index: u32,
    pub address: IpAddr,
    pub prefix_len: u8,
}

/// rtnetlink client for links and addresses.
pub struct Links {
    channel: Channel,
}

impl Links {
    pub fn open(counters: Counters) -> Result<Links> {
        Ok(Links {
            channel: Channel::open(Family::Route, NETLINK_ROUTE, counters)?,
        })
    }

    /// The index of the link called `name`, if there is one
    /// (equivalent to `ip link show NAME`).
    pub async fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        let mut query = LinkMessage::default();
        query
            .attributes
            .push(LinkAttribute::IfName(name.to_owned()));
        match self
            .channel
            .request(Request::ack(RouteNetlinkMessage::GetLink(query), 0))
            .await
        {
            Ok(replies) => Ok(replies.into_iter().find_map(|reply| match reply {
                RouteNetlinkMessage::NewLink(link) => Some(link.header.index),
                _ => None,
            })),
            Err(e) if e.class() == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes sure a dummy link `name` exists and returns its index
    /// (equivalent to `ip link add NAME type dummy`). The link is left down,
    /// as kube-proxy leaves `kube-ipvs0`: the kernel still installs local
    /// routes for its addresses, which is all IPVS needs.
    pub async fn ensure_dummy(&mut self, name: &str) -> Result<u32> {
        if let Some(index) = self.link_index(name).await? {
            return Ok(index);
        }
        let create = RouteNetlinkMessage::NewLink(LinkDummy::new(name).build());
        match self
            .channel
            .request(Request::ack(create, NLM_F_CREATE | NLM_F_EXCL))
            .await
        {
            Ok(_) => {}
            // Someone created it between our look-up and our create.
            Err(e) if e.class() == ErrorClass::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        self.link_index(name)
            .await?
            .ok_or_else(|| Error::Unexpected {
                family: Family::Route,
                kind: "NEWLINK",
                detail: format!("link {name} missing right after it was created"),
            })
    }

    /// Deletes the link (equivalent to `ip link del NAME`); a missing link is
    /// not an error.
    pub async fn delete_link(&mut self, index: u32) -> Result<()> {
        let message = RouteNetlinkMessage::DelLink(LinkUnspec::new_with_index(index).build());
        match self.channel.request(Request::ack(message, 0)).await {
            Err(e) if e.class() != ErrorClass::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every address on every interface, in one dump
    /// (equivalent to `ip addr show`).
    pub async fn all_addresses(&mut self) -> Result<Vec<InterfaceAddress>> {
        let dump = RouteNetlinkMessage::GetAddress(AddressMessage::default());
        let replies = self.channel.request(Request::dump(dump, 0)).await?;
        let mut addresses: Vec<_> = replies
            .into_iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewAddress(message) => interface_address(&message),
                _ => None,
            })
            .collect();
        addresses.sort();
        Ok(addresses)
    }

    /// The addresses on one link (equivalent to `ip addr show dev NAME`).
    pub async fn addresses(&mut self, index: u32) -> Result<Vec<IpAddr>> {
        Ok(self
            .all_addresses()
            .await?
            .into_iter()
            .filter(|a| a.index == index)
            .map(|a| a.address)
            .collect())
    }

    /// Binds each address to the link as a host address (/32 or /128),
    /// pipelined; an address already there counts as success (equivalent to
    /// `ip addr add IP/32 dev NAME`). One outcome per address.
    pub async fn add_addresses(&mut self, index: u32, addresses: &[IpAddr]) -> Vec<Result<()>> {
        let requests = addresses
            .iter()
            .map(|&ip| {
                let message = RouteNetlinkMessage::NewAddress(host_address(index, ip));
                Request::ack(message, NLM_F_CREATE | NLM_F_EXCL)
            })
            .collect();
        settle(
            self.channel.exchange(requests).await,
            ErrorClass::AlreadyExists,
        )
    }

    /// Removes each address from the link, pipelined; an address that is
    /// not there counts as success (equivalent to `ip addr del IP/32 dev NAME`).
    pub async fn del_addresses(&mut self, index: u32, addresses: &[IpAddr]) -> Vec<Result<()>> {
        let requests = addresses
            .iter()
            .map(|&ip| Request::ack(RouteNetlinkMessage::DelAddress(host_address(index, ip)), 0))
            .collect();
        settle(self.channel.exchange(requests).await, ErrorClass::NotFound)
    }
}

/// Treats `benign` failures as success: they mean the kernel already is in
/// the state the request asked for.
fn settle<T>(outcomes: Vec<Result<Vec<T>>>, benign: ErrorClass) -> Vec<Result<()>> {
    outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(_) => Ok(()),
            Err(e) if e.class() == benign => Ok(()),
            Err(e) => Err(e),
        })
        .collect()
}

pub(crate) fn host_address(index: u32, ip: IpAddr) -> AddressMessage {
    match ip {
        IpAddr::V4(v4) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(v4, 32)
            .build(),
        IpAddr::V6(v6) => AddressMessageBuilder::<Ipv6Addr>::new()
            .index(index)
            .address(v6, 128)
            .build(),
    }
}

/// IPv4 point-to-point links put the local address in `IFA_LOCAL` and the
/// peer in `IFA_ADDRESS`; everywhere else `IFA_ADDRESS` is ours.
pub(crate) fn interface_address(message: &AddressMessage) -> Option<InterfaceAddress> {
    let local = message.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let address = local.or_else(|| {
        message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })?;
    Some(InterfaceAddress {
        index: message.header.index,
        address,
        prefix_len: message.header.prefix_len,
    })
}

impl MessageKind for RouteNetlinkMessage {
    fn kind(&self) -> &'static str {
        match self {
            RouteNetlinkMessage::NewLink(_) => "NEWLINK",
            RouteNetlinkMessage::DelLink(_) => "DELLINK",
            RouteNetlinkMessage::GetLink(_) => "GETLINK",
            RouteNetlinkMessage::SetLink(_) => "SETLINK",
            RouteNetlinkMessage::NewAddress(_) => "NEWADDR",
            RouteNetlinkMessage::DelAddress(_) => "DELADDR",
            RouteNetlinkMessage::GetAddress(_) => "GETADDR",
            _ => "OTHER",
        }
    }
}
