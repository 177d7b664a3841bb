//! Entry points for the fuzz targets in `fuzz/`: each takes bytes as the
//! kernel could send them and runs them through exactly the code a client
//! runs on a reply (the funnel's splitter and matcher, the protocol crate's
//! parser, the client's conversion to typed values, error formatting),
//! without a socket. Not an API: nothing in the daemon calls these.

use kipvs_packet_ipset::{merge_list_replies, Entry, IpsetMessage};
use kipvs_packet_ipvs::IpvsMessage;
use kipvs_packet_nftables::NftMessage;
use netlink_packet_core::{NLM_F_ACK_TLVS, NLM_F_CAPPED};
use netlink_packet_generic::GenlMessage;
use netlink_packet_route::RouteNetlinkMessage;

use crate::{
    exchange::{datagram_messages, echoed_request, ext_ack_message, Exchange, Expect},
    genl::FamilyLookup,
    Counters, Error, Family, Result,
};

/// Sequence numbers the fuzzed datagrams answer: an acknowledged request,
/// a dump and a request nothing answers.
pub const SEQ_ACK: u32 = 1;
pub const SEQ_DUMP: u32 = 2;
pub const SEQ_UNANSWERED: u32 = 3;

/// Feeds `datagram` to an exchange waiting on the three requests above and
/// returns every outcome, errors formatted as the logs would show them.
fn feed<T>(family: Family, datagram: &[u8]) -> Vec<Result<Vec<T>>>
where
    T: netlink_packet_core::NetlinkDeserializable + crate::MessageKind,
{
    let counters = Counters::default();
    let mut exchange = Exchange::<T>::new(
        family,
        &[
            (SEQ_ACK, "FUZZ_ACK", Expect::Ack),
            (SEQ_DUMP, "FUZZ_DUMP", Expect::Dump),
            (SEQ_UNANSWERED, "FUZZ_NONE", Expect::Nothing),
        ],
    );
    exchange.on_datagram(datagram, &counters);
    let _ = exchange.settled(&[SEQ_ACK, SEQ_DUMP, SEQ_UNANSWERED]);
    let outcomes = exchange.finish();
    for outcome in &outcomes {
        if let Err(e) = outcome {
            let _ = (e.to_string(), e.class(), e.errno());
        }
    }
    outcomes
}

/// An IPVS client's reply handling: family look-up, then services, real
/// servers, info and timeouts.
pub fn ipvs_datagram(datagram: &[u8]) -> usize {
    let mut decoded = 0;
    for outcome in feed::<GenlMessage<FamilyLookup>>(Family::Ipvs, datagram) {
        decoded += outcome.map_or(0, |replies| {
            replies.iter().filter(|r| r.payload.id.is_some()).count()
        });
    }
    for replies in feed::<GenlMessage<IpvsMessage>>(Family::Ipvs, datagram)
        .into_iter()
        .flatten()
    {
        for reply in &replies {
            decoded += usize::from(reply.payload.service().is_ok());
            decoded += usize::from(reply.payload.destination().is_ok());
            decoded += usize::from(reply.payload.info().is_ok());
            decoded += usize::from(reply.payload.timeouts().is_ok());
        }
    }
    decoded
}

/// An ipset client's reply handling: list dumps merged into sets, the
/// direct replies, and a failed batch mapped back to its entry.
pub fn ipset_datagram(datagram: &[u8]) -> usize {
    let entries = fuzz_entries();
    let mut decoded = 0;
    for outcome in feed::<IpsetMessage>(Family::Ipset, datagram) {
        match outcome {
            Ok(replies) => {
                for reply in &replies {
                    decoded += usize::from(reply.protocol_reply().is_ok());
                    decoded += usize::from(reply.type_reply().is_ok());
                    decoded += usize::from(reply.index().is_ok());
                    decoded += usize::from(reply.set_info().is_ok());
                }
                decoded += merge_list_replies(replies).map_or(0, |sets| sets.len());
            }
            Err(Error::Kernel(kernel)) => {
                decoded += crate::ipset::entry_error("KUBE-FUZZ", &entries, kernel)
                    .to_string()
                    .len();
            }
            Err(_) => {}
        }
    }
    decoded
}

/// An nf_tables client's reply handling (table, chain and rule dumps).
pub fn nftables_datagram(datagram: &[u8]) -> usize {
    feed::<NftMessage>(Family::NfTables, datagram)
        .into_iter()
        .flatten()
        .map(|replies| replies.len())
        .sum()
}

/// The links client's reply handling (link look-ups, address dumps) and the
/// address notification counter, both on rtnetlink messages.
pub fn route_datagram(datagram: &[u8]) -> usize {
    let mut decoded = crate::address_events::notification_kinds(datagram).len();
    for replies in feed::<RouteNetlinkMessage>(Family::Route, datagram)
        .into_iter()
        .flatten()
    {
        for reply in &replies {
            decoded += match reply {
                RouteNetlinkMessage::NewAddress(message) => {
                    usize::from(crate::links::interface_address(message).is_some())
                }
                RouteNetlinkMessage::NewLink(link) => usize::from(link.header.index != 0),
                _ => 0,
            };
        }
    }
    decoded
}

/// The conntrack client's reply handling (flow dumps).
pub fn conntrack_datagram(datagram: &[u8]) -> usize {
    feed::<crate::conntrack::CtMessage>(Family::Conntrack, datagram)
        .into_iter()
        .flatten()
        .map(|replies| {
            replies
                .iter()
                .filter_map(|reply| crate::conntrack::flow_of(&reply.0))
                .count()
        })
        .sum()
}

/// The funnel's splitter: every message it yields lies inside the
/// datagram and holds at least a `nlmsghdr`; it never yields more messages
/// than 16-byte headers fit.
pub fn split_datagram(datagram: &[u8]) -> usize {
    let mut count = 0;
    for message in datagram_messages(datagram) {
        if let Ok(message) = message {
            assert!(message.len() >= 16, "a message shorter than nlmsghdr");
            let start = message.as_ptr() as usize - datagram.as_ptr() as usize;
            assert!(
                start + message.len() <= datagram.len(),
                "a message past the datagram"
            );
        }
        count += 1;
        assert!(
            count <= datagram.len() / 16,
            "more messages than headers fit"
        );
    }
    count
}

/// The error path of an `NLMSG_ERROR` whose flags are `flags` and whose
/// body (the code, the echoed request, extended-ack TLVs) is `body`: the
/// readers of the echo and of the ext-ack text directly, then the whole
/// message through the funnel as an ipset batch error (which also reads the
/// echoed LINENO).
pub fn error_message(flags: u16, body: &[u8]) -> usize {
    let mut decoded = 0;
    if let Some(after_code) = body.get(4..) {
        for flags in [flags, flags | NLM_F_ACK_TLVS, flags | NLM_F_CAPPED] {
            decoded += echoed_request(flags, after_code).len();
            decoded += ext_ack_message(flags, after_code).map_or(0, |m| m.len());
        }
        decoded += kipvs_packet_ipset::error_lineno(after_code).map_or(0, |l| l as usize);
    }
    for seq in [SEQ_ACK, SEQ_DUMP] {
        let mut datagram = Vec::with_capacity(16 + body.len());
        let length = u32::try_from(16 + body.len()).unwrap_or(u32::MAX);
        datagram.extend_from_slice(&length.to_ne_bytes());
        datagram.extend_from_slice(&2u16.to_ne_bytes());
        datagram.extend_from_slice(&flags.to_ne_bytes());
        datagram.extend_from_slice(&seq.to_ne_bytes());
        datagram.extend_from_slice(&0u32.to_ne_bytes());
        datagram.extend_from_slice(body);
        decoded += ipset_datagram(&datagram);
    }
    decoded
}

fn fuzz_entries() -> Vec<Entry> {
    let ip = std::net::IpAddr::from([10, 96, 0, 10]);
    (0..4u16)
        .map(|i| Entry::ip_port(ip, 6, 80 + i).with_comment("default/fuzz:http"))
        .collect()
}
