//! Reading Kubernetes fields that may be wrong: protocols, port numbers,
//! object names.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kipvs_packet_ipvs::Protocol;

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

/// How warnings name an object: `Kind namespace/name`.
pub(crate) fn object_label(kind: &str, namespace: &str, name: Option<&str>) -> String {
    format!("{kind} {namespace}/{}", name.unwrap_or("<unnamed>"))
}
