//! Reading Kubernetes fields that may be wrong: protocols, port numbers,
//! object names.

use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kipvs_packet_ipvs::Protocol;

use crate::names::cut_at_char_boundary;

/// A `protocol` field: TCP when unset (the API default), UDP, SCTP.
pub(crate) fn protocol(value: Option<&str>) -> Result<Protocol, String> {
    match value.unwrap_or("TCP") {
        "TCP" => Ok(Protocol::Tcp),
        "UDP" => Ok(Protocol::Udp),
        "SCTP" => Ok(Protocol::Sctp),
        other => Err(format!("unsupported protocol {other:?}")),
    }
}

/// The protocol number ipset entries carry (`IPPROTO_*`).
pub(crate) fn ip_proto(protocol: Protocol) -> u8 {
    // Only Tcp/Udp/Sctp come out of `protocol()`, all below 256.
    u8::try_from(u16::from(protocol)).unwrap_or(0)
}

/// Why `ip` must never be a service address, or `None` when it may be.
///
/// The API server checks only that cluster IPs come from the service range
/// and that ingress IPs are IPs at all, so anyone who can write
/// `services/status` (or a manifest) could otherwise make every node bind
/// `127.0.0.1` to `kube-ipvs0` and put a virtual service on, say,
/// `127.0.0.1:22`. None of these can be a service's address.
pub(crate) fn special_address(ip: &IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_unspecified() {
                Some("the unspecified address")
            } else if v4.is_multicast() {
                Some("a multicast address")
            } else if v4.is_link_local() {
                Some("a link-local address")
            } else if v4.is_broadcast() {
                Some("the broadcast address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if v6.segments()[0] & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if v6.to_ipv4_mapped().is_some() {
                // The kernel would treat it as the IPv4 address it maps,
                // which the family checks never saw.
                Some("an IPv4-mapped IPv6 address")
            } else {
                None
            }
        }
    }
}

/// A port number in 1..=65535.
pub(crate) fn port_number(value: i32) -> Option<u16> {
    u16::try_from(value).ok().filter(|port| *port != 0)
}

/// `namespace/name` of an object; the namespace defaults like kubectl's.
pub(crate) fn namespaced_name(meta: &ObjectMeta) -> (String, Option<String>) {
    let namespace = meta
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    let name = meta.name.clone().filter(|name| !name.is_empty());
    (namespace, name)
}

/// How warnings name an object: `Kind namespace/name`. A name far longer
/// than the API allows (the manifests source does not check) is cut, so
/// one hostile object cannot flood the log with every warning about it.
pub(crate) fn object_label(kind: &str, namespace: &str, name: Option<&str>) -> String {
    let shown = |text: &str| {
        let cut = cut_at_char_boundary(text, LONGEST_NAME_SHOWN);
        if cut.len() < text.len() {
            format!("{cut}…({} bytes)", text.len())
        } else {
            cut.to_owned()
        }
    };
    format!(
        "{kind} {}/{}",
        shown(namespace),
        name.map(shown).unwrap_or_else(|| "<unnamed>".to_owned())
    )
}

/// Longer than any valid object name (253 bytes).
const LONGEST_NAME_SHOWN: usize = 253;
