//! ipset error codes (`enum ipset_errno` in `ip_set.h`, plus the
//! type-specific ones of `ip_set_hash.h` / `ip_set_bitmap.h`) and the
//! restore line number of a failed batched request.

use crate::{attribute::IpsetAttr, message::IpsetMessage};

pub const IPSET_ERR_PRIVATE: i32 = 4096;
pub const IPSET_ERR_PROTOCOL: i32 = 4097;
pub const IPSET_ERR_FIND_TYPE: i32 = 4098;
pub const IPSET_ERR_MAX_SETS: i32 = 4099;
pub const IPSET_ERR_BUSY: i32 = 4100;
pub const IPSET_ERR_EXIST_SETNAME2: i32 = 4101;
pub const IPSET_ERR_TYPE_MISMATCH: i32 = 4102;
pub const IPSET_ERR_EXIST: i32 = 4103;
pub const IPSET_ERR_INVALID_CIDR: i32 = 4104;
pub const IPSET_ERR_INVALID_NETMASK: i32 = 4105;
pub const IPSET_ERR_INVALID_FAMILY: i32 = 4106;
pub const IPSET_ERR_TIMEOUT: i32 = 4107;
pub const IPSET_ERR_REFERENCED: i32 = 4108;
pub const IPSET_ERR_IPADDR_IPV4: i32 = 4109;
pub const IPSET_ERR_IPADDR_IPV6: i32 = 4110;
pub const IPSET_ERR_COUNTER: i32 = 4111;
pub const IPSET_ERR_COMMENT: i32 = 4112;
pub const IPSET_ERR_INVALID_MARKMASK: i32 = 4113;
pub const IPSET_ERR_SKBINFO: i32 = 4114;
/// First type-specific code; its meaning depends on the set type.
pub const IPSET_ERR_TYPE_SPECIFIC: i32 = 4352;

// hash:* types (include/linux/netfilter/ipset/ip_set_hash.h)
pub const IPSET_ERR_HASH_FULL: i32 = IPSET_ERR_TYPE_SPECIFIC;
pub const IPSET_ERR_HASH_ELEM: i32 = 4353;
pub const IPSET_ERR_INVALID_PROTO: i32 = 4354;
pub const IPSET_ERR_MISSING_PROTO: i32 = 4355;
pub const IPSET_ERR_HASH_RANGE_UNSUPPORTED: i32 = 4356;
pub const IPSET_ERR_HASH_RANGE: i32 = 4357;

// bitmap:* types (include/linux/netfilter/ipset/ip_set_bitmap.h)
pub const IPSET_ERR_BITMAP_RANGE: i32 = IPSET_ERR_TYPE_SPECIFIC;
pub const IPSET_ERR_BITMAP_RANGE_SIZE: i32 = 4353;

/// The kernel name of a generic ipset error code. Accepts the code as
/// netlink reports it (negative) or positive. Type-specific codes
/// (≥ `IPSET_ERR_TYPE_SPECIFIC`) are ambiguous without the set type: see
/// [`ipset_type_error_name`].
pub fn ipset_error_name(code: i32) -> Option<&'static str> {
    Some(match code.checked_abs()? {
        IPSET_ERR_PRIVATE => "IPSET_ERR_PRIVATE",
        IPSET_ERR_PROTOCOL => "IPSET_ERR_PROTOCOL",
        IPSET_ERR_FIND_TYPE => "IPSET_ERR_FIND_TYPE",
        IPSET_ERR_MAX_SETS => "IPSET_ERR_MAX_SETS",
        IPSET_ERR_BUSY => "IPSET_ERR_BUSY",
        IPSET_ERR_EXIST_SETNAME2 => "IPSET_ERR_EXIST_SETNAME2",
        IPSET_ERR_TYPE_MISMATCH => "IPSET_ERR_TYPE_MISMATCH",
        IPSET_ERR_EXIST => "IPSET_ERR_EXIST",
        IPSET_ERR_INVALID_CIDR => "IPSET_ERR_INVALID_CIDR",
        IPSET_ERR_INVALID_NETMASK => "IPSET_ERR_INVALID_NETMASK",
        IPSET_ERR_INVALID_FAMILY => "IPSET_ERR_INVALID_FAMILY",
        IPSET_ERR_TIMEOUT => "IPSET_ERR_TIMEOUT",
        IPSET_ERR_REFERENCED => "IPSET_ERR_REFERENCED",
        IPSET_ERR_IPADDR_IPV4 => "IPSET_ERR_IPADDR_IPV4",
        IPSET_ERR_IPADDR_IPV6 => "IPSET_ERR_IPADDR_IPV6",
        IPSET_ERR_COUNTER => "IPSET_ERR_COUNTER",
        IPSET_ERR_COMMENT => "IPSET_ERR_COMMENT",
        IPSET_ERR_INVALID_MARKMASK => "IPSET_ERR_INVALID_MARKMASK",
        IPSET_ERR_SKBINFO => "IPSET_ERR_SKBINFO",
        _ => return None,
    })
}

/// Like [`ipset_error_name`], but also names the type-specific codes of
/// `hash:*` and `bitmap:*` sets (`type_name` as in `hash:ip,port`).
pub fn ipset_type_error_name(type_name: &str, code: i32) -> Option<&'static str> {
    if let Some(name) = ipset_error_name(code) {
        return Some(name);
    }
    let code = code.checked_abs()?;
    if type_name.starts_with("hash:") {
        Some(match code {
            IPSET_ERR_HASH_FULL => "IPSET_ERR_HASH_FULL",
            IPSET_ERR_HASH_ELEM => "IPSET_ERR_HASH_ELEM",
            IPSET_ERR_INVALID_PROTO => "IPSET_ERR_INVALID_PROTO",
            IPSET_ERR_MISSING_PROTO => "IPSET_ERR_MISSING_PROTO",
            IPSET_ERR_HASH_RANGE_UNSUPPORTED => "IPSET_ERR_HASH_RANGE_UNSUPPORTED",
            IPSET_ERR_HASH_RANGE => "IPSET_ERR_HASH_RANGE",
            _ => return None,
        })
    } else if type_name.starts_with("bitmap:") {
        Some(match code {
            IPSET_ERR_BITMAP_RANGE => "IPSET_ERR_BITMAP_RANGE",
            IPSET_ERR_BITMAP_RANGE_SIZE => "IPSET_ERR_BITMAP_RANGE_SIZE",
            _ => return None,
        })
    } else {
        None
    }
}

/// The restore line number of the element that failed, read from the
/// request the kernel echoes in an `NLMSG_ERROR` (`ErrorMessage::header`:
/// the whole original message, `nlmsghdr` included).
///
/// For an ADD/DEL carrying `IPSET_ATTR_LINENO`, `call_ad`
/// (`net/netfilter/ipset/ip_set_core.c`) stops at the first failing element,
/// copies the request into the error reply uncapped and overwrites its
/// command-level `LINENO` with that element's own `LINENO`. The elements
/// before it were applied; the ones after it were not. Feed the result to
/// [`crate::entry_for_lineno`]. `None` when the echo is capped or carries no
/// line number.
pub fn error_lineno(echoed_request: &[u8]) -> Option<u32> {
    const NLMSG_HDRLEN: usize = 16;
    let header = echoed_request.get(..NLMSG_HDRLEN)?;
    let len = u32::from_ne_bytes(header[0..4].try_into().ok()?) as usize;
    let nlmsg_type = u16::from_ne_bytes(header[4..6].try_into().ok()?);
    let payload = echoed_request.get(NLMSG_HDRLEN..len.min(echoed_request.len()))?;
    IpsetMessage::parse(nlmsg_type, payload)
        .ok()?
        .attrs
        .iter()
        .find_map(|attr| match attr {
            IpsetAttr::LineNo(lineno) => Some(*lineno),
            _ => None,
        })
}
