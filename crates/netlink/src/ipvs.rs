//! IPVS over generic netlink: virtual services and real servers, read and
//! written without running `ipvsadm`.

use std::net::IpAddr;

use kipvs_packet_ipvs::{Destination, Info, IpvsCmd, IpvsMessage, Service, ServiceKey, Timeouts};
use netlink_packet_core::DecodeError;
use netlink_packet_generic::GenlMessage;
use netlink_sys::protocols::NETLINK_GENERIC;

use crate::{genl::resolve_family, Channel, Counters, Error, Family, MessageKind, Request, Result};

/// One change to the IPVS table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpvsChange {
    /// `ipvsadm -A`.
    AddService(Service),
    /// `ipvsadm -E`: scheduler, flags, timeout, netmask in place.
    UpdateService(Service),
    /// `ipvsadm -D`: the service and all its real servers.
    DeleteService(ServiceKey),
    /// `ipvsadm -a`.
    AddDestination(ServiceKey, Destination),
    /// `ipvsadm -e`: weight, forwarding method, thresholds in place.
    UpdateDestination(ServiceKey, Destination),
    /// `ipvsadm -d`.
    DeleteDestination(ServiceKey, IpAddr, u16),
}

impl IpvsChange {
    fn message(&self) -> IpvsMessage {
        match self {
            IpvsChange::AddService(s) => IpvsMessage::new_service(s),
            IpvsChange::UpdateService(s) => IpvsMessage::set_service(s),
            IpvsChange::DeleteService(key) => IpvsMessage::del_service(key),
            IpvsChange::AddDestination(key, d) => IpvsMessage::new_dest(key, d),
            IpvsChange::UpdateDestination(key, d) => IpvsMessage::set_dest(key, d),
            IpvsChange::DeleteDestination(key, addr, port) => {
                IpvsMessage::del_dest(key, *addr, *port)
            }
        }
    }
}

/// IPVS client, bound to the network namespace it was opened in.
pub struct Ipvs {
    channel: Channel,
    family_id: u16,
    /// Extra sockets for concurrent real-server dumps, opened on first use.
    dump_channels: Vec<Channel>,
}

/// How many real-server dumps run at once.
pub const DUMP_SOCKETS: usize = 8;

impl Ipvs {
    /// Opens a generic-netlink socket and resolves the IPVS family. Fails
    /// with [`Error::IpvsUnavailable`] on a kernel without IPVS.
    pub async fn open(counters: Counters) -> Result<Ipvs> {
        let mut channel = Channel::open(Family::Ipvs, NETLINK_GENERIC, counters)?;
        let family_id = resolve_family(&mut channel, "IPVS")
            .await?
            .ok_or(Error::IpvsUnavailable)?;
        Ok(Ipvs {
            channel,
            family_id,
            dump_channels: Vec::new(),
        })
    }

    fn wrap(&self, message: IpvsMessage) -> GenlMessage<IpvsMessage> {
        let mut genl = GenlMessage::from_payload(message);
        genl.set_resolved_family_id(self.family_id);
        genl
    }

    /// Every virtual service, from one dump (`ipvsadm -Ln`, first half).
    pub async fn services(&mut self) -> Result<Vec<Service>> {
        let dump = Request::dump(self.wrap(IpvsMessage::dump_services()), 0);
        let replies = self.channel.request(dump).await?;
        replies
            .iter()
            .map(|r| r.payload.service().map_err(decode("GET_SERVICE")))
            .collect()
    }

    /// One virtual service, or `None` if it is not there.
    pub async fn service(&mut self, key: &ServiceKey) -> Result<Option<Service>> {
        let query = Request::ack(self.wrap(IpvsMessage::get_service(key)), 0);
        match self.channel.request(query).await {
            Ok(replies) => match replies.first() {
                Some(reply) => Ok(Some(
                    reply.payload.service().map_err(decode("GET_SERVICE"))?,
                )),
                None => Ok(None),
            },
            Err(e) if e.class() == crate::ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The real servers of one service, from one dump (the kernel has no
    /// dump of every service's real servers at once).
    pub async fn destinations(&mut self, key: &ServiceKey) -> Result<Vec<Destination>> {
        let dump = Request::dump(self.wrap(IpvsMessage::dump_dests(key)), 0);
        let replies = self.channel.request(dump).await?;
        replies
            .iter()
            .map(|r| r.payload.destination().map_err(decode("GET_DEST")))
            .collect()
    }

    /// The real servers of many services, one outcome per key, in order.
    ///
    /// The kernel dumps real servers per virtual service only, and a socket
    /// runs one dump at a time, finishing it only as we read. So the dumps
    /// are spread over [`DUMP_SOCKETS`] sockets that run concurrently instead
    /// of waiting on each dump in turn.
    pub async fn destinations_of(&mut self, keys: &[ServiceKey]) -> Vec<Result<Vec<Destination>>> {
        while self.dump_channels.len() < DUMP_SOCKETS.min(keys.len()) {
            let counters = self.channel.counters().clone();
            match Channel::open(Family::Ipvs, NETLINK_GENERIC, counters) {
                Ok(channel) => self.dump_channels.push(channel),
                // Fewer sockets only means less concurrency.
                Err(_) if !self.dump_channels.is_empty() => break,
                Err(e) => return keys.iter().map(|_| Err(copy_error(&e))).collect(),
            }
        }
        let family_id = self.family_id;
        let lanes = self.dump_channels.len().max(1);
        let work = self
            .dump_channels
            .iter_mut()
            .enumerate()
            .map(|(lane, channel)| async move {
                let mut done = Vec::new();
                for index in (lane..keys.len()).step_by(lanes) {
                    let mut genl = GenlMessage::from_payload(IpvsMessage::dump_dests(&keys[index]));
                    genl.set_resolved_family_id(family_id);
                    let outcome =
                        channel
                            .request(Request::dump(genl, 0))
                            .await
                            .and_then(|replies| {
                                replies
                                    .iter()
                                    .map(|r| r.payload.destination().map_err(decode("GET_DEST")))
                                    .collect()
                            });
                    done.push((index, outcome));
                }
                done
            });
        let mut outcomes: Vec<Option<Result<Vec<Destination>>>> =
            keys.iter().map(|_| None).collect();
        for (index, outcome) in futures::future::join_all(work).await.into_iter().flatten() {
            outcomes[index] = Some(outcome);
        }
        outcomes
            .into_iter()
            .map(|o| o.expect("every key has a lane"))
            .collect()
    }

    /// Applies the changes in order, pipelined in as few `sendmsg` calls as
    /// fit; one outcome per change. A failed change does not stop the rest:
    /// the caller decides what a failure means for the others.
    pub async fn apply(&mut self, changes: &[IpvsChange]) -> Vec<Result<()>> {
        let requests = changes
            .iter()
            .map(|change| Request::ack(self.wrap(change.message()), 0))
            .collect();
        self.channel
            .exchange(requests)
            .await
            .into_iter()
            .map(|r| r.map(drop))
            .collect()
    }

    /// Version and connection table size (`ipvsadm -Ln`'s first line).
    pub async fn info(&mut self) -> Result<Info> {
        let replies = self
            .channel
            .request(Request::ack(self.wrap(IpvsMessage::get_info()), 0))
            .await?;
        first(&replies, "GET_INFO")?
            .payload
            .info()
            .map_err(decode("GET_INFO"))
    }

    /// Connection timeouts (`ipvsadm -Ln --timeout`).
    pub async fn timeouts(&mut self) -> Result<Timeouts> {
        let replies = self
            .channel
            .request(Request::ack(self.wrap(IpvsMessage::get_config()), 0))
            .await?;
        first(&replies, "GET_CONFIG")?
            .payload
            .timeouts()
            .map_err(decode("GET_CONFIG"))
    }

    /// Sets connection timeouts; 0 leaves one unchanged (`ipvsadm --set`).
    pub async fn set_timeouts(&mut self, timeouts: &Timeouts) -> Result<()> {
        self.channel
            .request(Request::ack(
                self.wrap(IpvsMessage::set_config(timeouts)),
                0,
            ))
            .await
            .map(drop)
    }

    /// Zeroes the counters of one service or of all (`ipvsadm -Z`).
    pub async fn zero(&mut self, key: Option<&ServiceKey>) -> Result<()> {
        self.channel
            .request(Request::ack(self.wrap(IpvsMessage::zero(key)), 0))
            .await
            .map(drop)
    }

    /// Removes every virtual service (`ipvsadm -C`). Not used by the
    /// daemon, which only removes what it created; here for tests and tools.
    pub async fn flush(&mut self) -> Result<()> {
        self.channel
            .request(Request::ack(self.wrap(IpvsMessage::flush()), 0))
            .await
            .map(drop)
    }
}

fn first<'a>(
    replies: &'a [GenlMessage<IpvsMessage>],
    kind: &'static str,
) -> Result<&'a GenlMessage<IpvsMessage>> {
    replies.first().ok_or_else(|| Error::Unexpected {
        family: Family::Ipvs,
        kind,
        detail: "the kernel acknowledged without a reply".into(),
    })
}

fn decode(kind: &'static str) -> impl Fn(DecodeError) -> Error {
    move |e| Error::Decode {
        family: Family::Ipvs,
        kind,
        detail: e.to_string(),
    }
}

impl MessageKind for GenlMessage<IpvsMessage> {
    fn kind(&self) -> &'static str {
        match self.payload.cmd {
            IpvsCmd::NewService => "NEW_SERVICE",
            IpvsCmd::SetService => "SET_SERVICE",
            IpvsCmd::DelService => "DEL_SERVICE",
            IpvsCmd::GetService => "GET_SERVICE",
            IpvsCmd::NewDest => "NEW_DEST",
            IpvsCmd::SetDest => "SET_DEST",
            IpvsCmd::DelDest => "DEL_DEST",
            IpvsCmd::GetDest => "GET_DEST",
            IpvsCmd::SetConfig => "SET_CONFIG",
            IpvsCmd::GetConfig => "GET_CONFIG",
            IpvsCmd::SetInfo => "SET_INFO",
            IpvsCmd::GetInfo => "GET_INFO",
            IpvsCmd::Zero => "ZERO",
            IpvsCmd::Flush => "FLUSH",
            _ => "OTHER",
        }
    }
}

/// Opening a socket failed once but every key needs its own error.
fn copy_error(e: &Error) -> Error {
    match e {
        Error::Io {
            family,
            action,
            source,
        } => Error::Io {
            family: *family,
            action,
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        other => Error::Unexpected {
            family: Family::Ipvs,
            kind: "GET_DEST",
            detail: other.to_string(),
        },
    }
}
