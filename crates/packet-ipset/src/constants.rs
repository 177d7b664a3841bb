//! Kernel constants, with the names of
//! `include/uapi/linux/netfilter/ipset/ip_set.h` and `nfnetlink.h`.

/// `NFNL_SUBSYS_IPSET`: the high byte of every ipset `nlmsg_type`.
pub const NFNL_SUBSYS_IPSET: u8 = 6;
/// `NFNETLINK_V0`: the only `nfgenmsg.version`.
pub const NFNETLINK_V0: u8 = 0;
/// Size of `struct nfgenmsg` (family, version, res_id).
pub const NFGENMSG_LEN: usize = 4;

/// The protocol version this crate speaks (and the `ipset` 7.x tool sends).
pub const IPSET_PROTOCOL: u8 = 7;
/// The oldest protocol a current kernel still accepts (`protocol_min_failed`).
pub const IPSET_PROTOCOL_MIN: u8 = 6;
/// Longest set or type name, including the NUL.
pub const IPSET_MAXNAMELEN: usize = 32;
/// Longest comment the kernel accepts, excluding the NUL.
pub const IPSET_MAX_COMMENT_SIZE: usize = 255;

// enum ipset_cmd
pub const IPSET_CMD_NONE: u8 = 0;
pub const IPSET_CMD_PROTOCOL: u8 = 1;
pub const IPSET_CMD_CREATE: u8 = 2;
pub const IPSET_CMD_DESTROY: u8 = 3;
pub const IPSET_CMD_FLUSH: u8 = 4;
pub const IPSET_CMD_RENAME: u8 = 5;
pub const IPSET_CMD_SWAP: u8 = 6;
pub const IPSET_CMD_LIST: u8 = 7;
pub const IPSET_CMD_SAVE: u8 = 8;
pub const IPSET_CMD_ADD: u8 = 9;
pub const IPSET_CMD_DEL: u8 = 10;
pub const IPSET_CMD_TEST: u8 = 11;
pub const IPSET_CMD_HEADER: u8 = 12;
pub const IPSET_CMD_TYPE: u8 = 13;
pub const IPSET_CMD_GET_BYNAME: u8 = 14;
pub const IPSET_CMD_GET_BYINDEX: u8 = 15;

// Attributes at command level
pub const IPSET_ATTR_PROTOCOL: u16 = 1;
pub const IPSET_ATTR_SETNAME: u16 = 2;
pub const IPSET_ATTR_TYPENAME: u16 = 3;
/// Same id as `TYPENAME`: the second set name of RENAME and SWAP.
pub const IPSET_ATTR_SETNAME2: u16 = IPSET_ATTR_TYPENAME;
pub const IPSET_ATTR_REVISION: u16 = 4;
pub const IPSET_ATTR_FAMILY: u16 = 5;
pub const IPSET_ATTR_FLAGS: u16 = 6;
pub const IPSET_ATTR_DATA: u16 = 7;
pub const IPSET_ATTR_ADT: u16 = 8;
pub const IPSET_ATTR_LINENO: u16 = 9;
pub const IPSET_ATTR_PROTOCOL_MIN: u16 = 10;
/// Same id as `PROTOCOL_MIN`: the oldest revision in a TYPE reply.
pub const IPSET_ATTR_REVISION_MIN: u16 = IPSET_ATTR_PROTOCOL_MIN;
pub const IPSET_ATTR_INDEX: u16 = 11;

// CADT attributes (inside DATA, in every context)
pub const IPSET_ATTR_IP: u16 = 1;
pub const IPSET_ATTR_IP_FROM: u16 = IPSET_ATTR_IP;
pub const IPSET_ATTR_IP_TO: u16 = 2;
pub const IPSET_ATTR_CIDR: u16 = 3;
pub const IPSET_ATTR_PORT: u16 = 4;
pub const IPSET_ATTR_PORT_FROM: u16 = IPSET_ATTR_PORT;
pub const IPSET_ATTR_PORT_TO: u16 = 5;
pub const IPSET_ATTR_TIMEOUT: u16 = 6;
pub const IPSET_ATTR_PROTO: u16 = 7;
pub const IPSET_ATTR_CADT_FLAGS: u16 = 8;
pub const IPSET_ATTR_CADT_LINENO: u16 = IPSET_ATTR_LINENO;
pub const IPSET_ATTR_MARK: u16 = 10;
pub const IPSET_ATTR_MARKMASK: u16 = 11;
pub const IPSET_ATTR_CADT_MAX: u16 = 16;

// Create-only attributes (DATA of CREATE, and the header DATA of LIST)
pub const IPSET_ATTR_INITVAL: u16 = 17;
pub const IPSET_ATTR_HASHSIZE: u16 = 18;
pub const IPSET_ATTR_MAXELEM: u16 = 19;
pub const IPSET_ATTR_NETMASK: u16 = 20;
pub const IPSET_ATTR_BUCKETSIZE: u16 = 21;
pub const IPSET_ATTR_RESIZE: u16 = 22;
pub const IPSET_ATTR_SIZE: u16 = 23;
// Kernel-only (LIST header)
pub const IPSET_ATTR_ELEMENTS: u16 = 24;
pub const IPSET_ATTR_REFERENCES: u16 = 25;
pub const IPSET_ATTR_MEMSIZE: u16 = 26;

// ADT-only attributes (DATA of ADD/DEL/TEST, and the elements of LIST).
// They reuse the ids 17.. of the create-only attributes.
pub const IPSET_ATTR_ETHER: u16 = 17;
pub const IPSET_ATTR_NAME: u16 = 18;
pub const IPSET_ATTR_NAMEREF: u16 = 19;
pub const IPSET_ATTR_IP2: u16 = 20;
pub const IPSET_ATTR_CIDR2: u16 = 21;
pub const IPSET_ATTR_IP2_TO: u16 = 22;
pub const IPSET_ATTR_IFACE: u16 = 23;
pub const IPSET_ATTR_BYTES: u16 = 24;
pub const IPSET_ATTR_PACKETS: u16 = 25;
pub const IPSET_ATTR_COMMENT: u16 = 26;
pub const IPSET_ATTR_SKBMARK: u16 = 27;
pub const IPSET_ATTR_SKBPRIO: u16 = 28;
pub const IPSET_ATTR_SKBQUEUE: u16 = 29;
pub const IPSET_ATTR_PAD: u16 = 30;

// Inside IP / IP2 / IP_TO
pub const IPSET_ATTR_IPADDR_IPV4: u16 = 1;
pub const IPSET_ATTR_IPADDR_IPV6: u16 = 2;

// enum ipset_cmd_flags (IPSET_ATTR_FLAGS)
pub const IPSET_FLAG_EXIST: u32 = 1 << 0;
pub const IPSET_FLAG_LIST_SETNAME: u32 = 1 << 1;
pub const IPSET_FLAG_LIST_HEADER: u32 = 1 << 2;

// enum ipset_cadt_flags (IPSET_ATTR_CADT_FLAGS)
pub const IPSET_FLAG_BEFORE: u32 = 1 << 0;
pub const IPSET_FLAG_PHYSDEV: u32 = 1 << 1;
pub const IPSET_FLAG_NOMATCH: u32 = 1 << 2;
pub const IPSET_FLAG_WITH_COUNTERS: u32 = 1 << 3;
pub const IPSET_FLAG_WITH_COMMENT: u32 = 1 << 4;
pub const IPSET_FLAG_WITH_FORCEADD: u32 = 1 << 5;
pub const IPSET_FLAG_WITH_SKBINFO: u32 = 1 << 6;

// NFPROTO_* values carried in IPSET_ATTR_FAMILY
pub const NFPROTO_UNSPEC: u8 = 0;
pub const NFPROTO_IPV4: u8 = 2;
pub const NFPROTO_IPV6: u8 = 10;

// IPPROTO_* values carried in IPSET_ATTR_PROTO
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPPROTO_SCTP: u8 = 132;
