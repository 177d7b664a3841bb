//! The node's own addresses, on which node ports get virtual services.
//!
//! As kube-proxy's IPVS mode (`GetAllLocalAddressesExcept` with
//! `isValidForSet`): every address of every interface except those on
//! `kube-ipvs0` (the service addresses we bind ourselves), loopback
//! addresses (127.0.0.0/8, ::1: localhost node ports are not supported in
//! IPVS mode) and IPv6 link-local ones (fe80::/10). An address on the `lo`
//! *interface* that is not a loopback address (a node IP put there) counts.
//!
//! Kept current by rtnetlink notifications, not polling: each burst of
//! notifications triggers one re-read of every address, and the loop is
//! told only when the resulting set differs. Without notifications (the
//! socket cannot be opened, or receiving keeps failing) the addresses are
//! re-read before every full resync instead.

use std::{collections::BTreeSet, net::IpAddr, time::Duration};

use kipvs_netlink::{AddressEvents, Counters, InterfaceAddress, Links};
use tokio::{sync::watch, task::JoinHandle};
use tracing::{debug, info, warn};

use crate::{backoff::Backoff, Result, DUMMY_LINK};

/// The wait after a failure (a read, or receiving notifications): 1 s,
/// doubling up to 30 s while the failures go on.
const RETRY: Backoff = Backoff {
    first: Duration::from_secs(1),
    last: Duration::from_secs(30),
};

/// Receiving notifications failed this many times in a row: the socket is
/// given up, and the addresses are re-read on full resyncs instead (after
/// about a minute and a half of backoff: 1 + 2 + 4 + 8 + 16 + 30 + 30 s).
const RECEIVE_FAILURES_BEFORE_FALLBACK: u32 = 8;

/// After the `failures`-th failure in a row to receive notifications: how
/// long to pause before re-reading the addresses, or `None` to give up on
/// notifications.
fn after_receive_failure(failures: u32) -> Option<Duration> {
    (failures < RECEIVE_FAILURES_BEFORE_FALLBACK).then(|| RETRY.after(failures))
}

/// The node addresses among `all`, given the index of `kube-ipvs0` (if it
/// exists).
pub fn node_addresses(all: &[InterfaceAddress], dummy_link: Option<u32>) -> BTreeSet<IpAddr> {
    all.iter()
        .filter(|a| Some(a.index) != dummy_link)
        .map(|a| a.address)
        .filter(|&ip| is_node_address(ip))
        .collect()
}

fn is_node_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_loopback(),
        IpAddr::V6(v6) => !v6.is_loopback() && !v6.is_unicast_link_local(),
    }
}

/// Reads the node addresses with two requests through the funnel: the
/// `kube-ipvs0` index (looked up each time: the link is created by the
/// first sync, and re-created if someone deletes it) and one address dump.
struct AddressReader {
    links: Links,
    /// `kube-ipvs0`'s index at the last read: changes there are our own.
    dummy_link: Option<u32>,
}

impl AddressReader {
    fn open(counters: Counters) -> Result<AddressReader> {
        Ok(AddressReader {
            links: Links::open(counters)?,
            dummy_link: None,
        })
    }

    async fn read(&mut self) -> Result<BTreeSet<IpAddr>> {
        let dummy_link = self.links.link_index(DUMMY_LINK).await?;
        self.dummy_link = dummy_link;
        let all = self.links.all_addresses().await?;
        Ok(node_addresses(&all, dummy_link))
    }

    /// Reads and publishes the set if it changed (which wakes the loop).
    async fn publish(&mut self, sender: &watch::Sender<BTreeSet<IpAddr>>) -> Result<()> {
        let addresses = self.read().await?;
        sender.send_if_modified(|current| {
            if *current == addresses {
                return false;
            }
            info!(addresses = ?addresses, "node addresses changed");
            *current = addresses;
            true
        });
        Ok(())
    }
}

/// What the follower task hands back when it gives up on notifications.
type Fallback = (AddressReader, watch::Sender<BTreeSet<IpAddr>>);

/// How the set is kept current.
enum Refresh {
    /// A background task follows the address notifications; it ends (with
    /// the reader and the sender) if receiving them keeps failing.
    Notified(JoinHandle<Fallback>),
    /// No notifications (the socket could not be opened, or the follower
    /// gave it up): the loop re-reads the addresses before every full
    /// resync instead (changes then take up to `--sync-period` to show).
    OnFullResync {
        reader: AddressReader,
        sender: watch::Sender<BTreeSet<IpAddr>>,
    },
    /// The follower task panicked: the last set stays.
    Stopped,
}

/// The node's addresses, kept current.
pub struct NodeAddresses {
    current: watch::Receiver<BTreeSet<IpAddr>>,
    refresh: Refresh,
}

impl NodeAddresses {
    /// Subscribes to address notifications, then reads the addresses once
    /// (in that order, so no change is missed in between). A failing
    /// first read is an error: the daemon cannot plan node ports.
    pub async fn start(counters: Counters) -> Result<NodeAddresses> {
        let mut reader = AddressReader::open(counters.clone())?;
        let subscription = AddressEvents::subscribe(counters);
        let (sender, current) = watch::channel(BTreeSet::new());
        reader.publish(&sender).await?;
        let refresh = match subscription {
            Ok(events) => Refresh::Notified(tokio::spawn(follow(events, reader, sender))),
            Err(error) => {
                warn!(
                    %error,
                    "cannot subscribe to address notifications; node addresses are re-read on every full resync instead"
                );
                Refresh::OnFullResync { reader, sender }
            }
        };
        Ok(NodeAddresses { current, refresh })
    }

    /// The current set (and marks it seen, for [`NodeAddresses::changed`]).
    pub fn current(&mut self) -> BTreeSet<IpAddr> {
        self.current.borrow_and_update().clone()
    }

    /// Completes when the set differs from the one last taken with
    /// [`NodeAddresses::current`]; never, when nothing follows the
    /// notifications.
    pub async fn changed(&mut self) {
        if self.current.changed().await.is_err() {
            // The sender is gone (the follower task panicked): nothing
            // will change any more.
            std::future::pending::<()>().await;
        }
    }

    /// Without notifications, re-reads the addresses (a failure is logged
    /// and the last set kept); with them, nothing to do.
    pub async fn before_full_resync(&mut self) {
        self.take_over_from_a_stopped_follower().await;
        if let Refresh::OnFullResync { reader, sender } = &mut self.refresh {
            if let Err(error) = reader.publish(sender).await {
                warn!(%error, "re-reading the node's addresses failed; keeping the last ones");
            }
        }
    }

    /// If the follower task gave up on notifications, its reader and
    /// sender now serve the re-reads on full resyncs.
    async fn take_over_from_a_stopped_follower(&mut self) {
        let finished = matches!(&self.refresh, Refresh::Notified(task) if task.is_finished());
        if !finished {
            return;
        }
        if let Refresh::Notified(task) = std::mem::replace(&mut self.refresh, Refresh::Stopped) {
            // Finished: the output is there, this does not wait.
            match task.await {
                Ok((reader, sender)) => self.refresh = Refresh::OnFullResync { reader, sender },
                Err(error) => {
                    warn!(%error, "the address follower stopped; the node's addresses stay as they are");
                }
            }
        }
    }
}

impl Drop for NodeAddresses {
    fn drop(&mut self) {
        if let Refresh::Notified(task) = &self.refresh {
            task.abort();
        }
    }
}

/// Re-reads the addresses after every burst of notifications; a failed
/// read is retried with backoff (notifications arriving meanwhile are
/// covered by the retry). Gives the reader and the sender back if
/// receiving notifications keeps failing.
async fn follow(
    mut events: AddressEvents,
    mut reader: AddressReader,
    sender: watch::Sender<BTreeSet<IpAddr>>,
) -> Fallback {
    let mut receive_failures = 0;
    loop {
        // The sync loop binds service addresses to kube-ipvs0 by the
        // thousand: those notifications are no news.
        match events.changed_except(reader.dummy_link).await {
            Ok(()) => receive_failures = 0,
            // Not a lost notification (that is a change); some other
            // socket error. Re-read anyway (a change may be behind it),
            // after a pause that grows so an error that repeats cannot
            // spin, until it has repeated long enough to give up.
            Err(error) => {
                receive_failures += 1;
                let Some(pause) = after_receive_failure(receive_failures) else {
                    warn!(
                        %error,
                        failures = receive_failures,
                        "receiving address notifications keeps failing; node addresses are re-read on every full resync instead"
                    );
                    return (reader, sender);
                };
                warn!(%error, retry_in = ?pause, "receiving address notifications failed");
                tokio::time::sleep(pause).await;
            }
        }
        debug!("address notification");
        let mut attempt = 0;
        while let Err(error) = reader.publish(&sender).await {
            attempt += 1;
            let retry = RETRY.after(attempt);
            warn!(%error, retry_in = ?retry, "re-reading the node's addresses failed");
            tokio::time::sleep(retry).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(index: u32, ip: &str) -> InterfaceAddress {
        let address: IpAddr = ip.parse().unwrap();
        InterfaceAddress {
            index,
            address,
            prefix_len: if address.is_ipv4() { 24 } else { 64 },
        }
    }

    fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
        list.iter().map(|ip| ip.parse().unwrap()).collect()
    }

    #[test]
    fn notifications_are_given_up_after_repeated_receive_failures() {
        let schedule: Vec<Option<u64>> = (1..=9)
            .map(|n| after_receive_failure(n).map(|pause| pause.as_secs()))
            .collect();
        assert_eq!(
            schedule,
            [
                Some(1),
                Some(2),
                Some(4),
                Some(8),
                Some(16),
                Some(30),
                Some(30),
                None,
                None
            ]
        );
    }

    #[test]
    fn loopback_link_local_and_kube_ipvs0_addresses_are_not_node_addresses() {
        const LO: u32 = 1;
        const ETH0: u32 = 2;
        const KUBE_IPVS0: u32 = 7;
        let all = [
            address(LO, "127.0.0.1"),
            address(LO, "::1"),
            // A node IP on the loopback interface still is one.
            address(LO, "192.168.77.1"),
            address(ETH0, "10.0.0.5"),
            address(ETH0, "127.9.9.9"),
            address(ETH0, "fe80::1"),
            address(ETH0, "febf::1"),
            address(ETH0, "fd00::5"),
            address(ETH0, "fec0::1"),
            address(KUBE_IPVS0, "10.96.0.10"),
            address(KUBE_IPVS0, "fd00:96::10"),
        ];
        assert_eq!(
            node_addresses(&all, Some(KUBE_IPVS0)),
            ips(&["192.168.77.1", "10.0.0.5", "fd00::5", "fec0::1"])
        );
        // Before kube-ipvs0 exists, nothing is excluded for it.
        assert_eq!(node_addresses(&all, None).len(), 6);
        assert_eq!(node_addresses(&[], Some(KUBE_IPVS0)), BTreeSet::new());
    }
}
