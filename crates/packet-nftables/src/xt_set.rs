//! The info blob of the xt `set` match (`include/uapi/linux/netfilter/xt_set.h`),
//! which lets an nf_tables rule test ipset membership through nft_compat,
//! exactly as iptables-nft's `-m set --match-set NAME dst,dst,src` does.
//!
//! The set is named by its kernel *index* (`ip_set_id_t`, from ipset's
//! `IP_SET_OP_GET_BYNAME`), not by name. Fields are host byte order: the
//! blob is the C struct copied as is (`match_compat_from_user()`).

use netlink_packet_core::DecodeError;

/// `ip_set_dim` flag bits in `xt_set_info.flags`
/// (`include/uapi/linux/netfilter/ipset/ip_set.h`).
pub const IPSET_INV_MATCH: u8 = 1 << 0;
pub const IPSET_DIM_ONE_SRC: u8 = 1 << 1;
pub const IPSET_DIM_TWO_SRC: u8 = 1 << 2;
pub const IPSET_DIM_THREE_SRC: u8 = 1 << 3;
pub const IPSET_DIM_MAX: usize = 6;

/// `IPSET_COUNTER_NONE`: do not match on the element's counters.
pub const IPSET_COUNTER_NONE: u8 = 0;

/// Revisions of the `set` match this crate encodes.
pub const XT_SET_MATCH_REV_1: u32 = 1;
pub const XT_SET_MATCH_REV_4: u32 = 4;

/// `XT_ALIGN(sizeof(struct xt_set_info_match_v1))`: 4 bytes of struct,
/// padded to the 8-byte x_tables alignment.
pub const XT_SET_INFO_MATCH_V1_LEN: usize = 8;
/// `sizeof(struct xt_set_info_match_v4)` on every Linux ABI with 8-byte
/// aligned `__aligned_u64`: `xt_set_info` (4) + pad (4) + two
/// `ip_set_counter_match { __aligned_u64 value; u8 op; }` (16 each) +
/// `u32 flags` (4) + tail pad (4) = 48, already `XT_ALIGN`ed.
/// `nft_match_init()` -> `xt_check_match()` rejects any other length.
pub const XT_SET_INFO_MATCH_V4_LEN: usize = 48;

/// Which packet address (or port) fills one dimension of the set's
/// element, in order: `dst,dst,src` is `[Dst, Dst, Src]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetDir {
    Src,
    Dst,
}

/// `struct xt_set_info { ip_set_id_t index; u8 dim; u8 flags; }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XtSetInfo {
    pub index: u16,
    /// Number of dimensions (1..=6).
    pub dim: u8,
    /// `IPSET_INV_MATCH` plus one `IPSET_DIM_n_SRC` bit per source dimension.
    pub flags: u8,
}

impl XtSetInfo {
    /// As libxt_set's `parse_dirs()` builds it: dimension n (1-based) sets
    /// bit n when it is a source.
    pub fn new(index: u16, dirs: &[SetDir], inverted: bool) -> Self {
        assert!(
            !dirs.is_empty() && dirs.len() <= IPSET_DIM_MAX,
            "an ipset match has 1..={IPSET_DIM_MAX} dimensions"
        );
        let mut flags = if inverted { IPSET_INV_MATCH } else { 0 };
        for (i, dir) in dirs.iter().enumerate() {
            if *dir == SetDir::Src {
                flags |= 1 << (i + 1);
            }
        }
        XtSetInfo {
            index,
            dim: dirs.len() as u8,
            flags,
        }
    }

    /// The directions, dimension by dimension (at most `IPSET_DIM_MAX`:
    /// parsing refuses more, and a hand-built value is cut there).
    pub fn dirs(&self) -> Vec<SetDir> {
        (1..=self.dim.min(IPSET_DIM_MAX as u8))
            .map(|n| {
                if self.flags & (1u8 << n) != 0 {
                    SetDir::Src
                } else {
                    SetDir::Dst
                }
            })
            .collect()
    }

    pub fn inverted(&self) -> bool {
        self.flags & IPSET_INV_MATCH != 0
    }

    fn emit(&self, buf: &mut [u8]) {
        buf[0..2].copy_from_slice(&self.index.to_ne_bytes());
        buf[2] = self.dim;
        buf[3] = self.flags;
    }

    /// Reads the first 4 bytes of `buf` (the callers check the length). A
    /// dimension count outside 1..=`IPSET_DIM_MAX` is refused, as the
    /// kernel's `set_match_v1_checkentry()` does.
    fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        let [i0, i1, dim, flags] = buf
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .ok_or_else(|| {
                DecodeError::from(format!("xt_set_info needs 4 bytes, got {}", buf.len()))
            })?;
        if dim == 0 || usize::from(dim) > IPSET_DIM_MAX {
            return Err(format!("xt_set_info dim {dim} is outside 1..={IPSET_DIM_MAX}").into());
        }
        Ok(XtSetInfo {
            index: u16::from_ne_bytes([i0, i1]),
            dim,
            flags,
        })
    }
}

/// `struct ip_set_counter_match { __aligned_u64 value; u8 op; }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IpSetCounterMatch {
    pub value: u64,
    /// `IPSET_COUNTER_*`.
    pub op: u8,
}

/// `struct xt_set_info_match_v1 { struct xt_set_info match_set; }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XtSetInfoMatchV1 {
    pub match_set: XtSetInfo,
}

impl XtSetInfoMatchV1 {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0; XT_SET_INFO_MATCH_V1_LEN];
        self.match_set.emit(&mut out);
        out
    }

    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        if buf.len() < 4 {
            return Err(format!("xt_set_info_match_v1 needs 4 bytes, got {}", buf.len()).into());
        }
        Ok(XtSetInfoMatchV1 {
            match_set: XtSetInfo::parse(buf)?,
        })
    }
}

/// `struct xt_set_info_match_v4`, what iptables-nft sends for `-m set`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XtSetInfoMatchV4 {
    pub match_set: XtSetInfo,
    pub packets: IpSetCounterMatch,
    pub bytes: IpSetCounterMatch,
    /// `IPSET_FLAG_*` (e.g. `IPSET_FLAG_RETURN_NOMATCH`,
    /// `IPSET_FLAG_SKIP_COUNTER_UPDATE`); 0 is iptables' default.
    pub flags: u32,
}

impl XtSetInfoMatchV4 {
    pub fn new(match_set: XtSetInfo) -> Self {
        XtSetInfoMatchV4 {
            match_set,
            packets: IpSetCounterMatch::default(),
            bytes: IpSetCounterMatch::default(),
            flags: 0,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0; XT_SET_INFO_MATCH_V4_LEN];
        self.match_set.emit(&mut out[0..4]);
        out[8..16].copy_from_slice(&self.packets.value.to_ne_bytes());
        out[16] = self.packets.op;
        out[24..32].copy_from_slice(&self.bytes.value.to_ne_bytes());
        out[32] = self.bytes.op;
        out[40..44].copy_from_slice(&self.flags.to_ne_bytes());
        out
    }

    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        if buf.len() != XT_SET_INFO_MATCH_V4_LEN {
            return Err(format!(
                "xt_set_info_match_v4 is {XT_SET_INFO_MATCH_V4_LEN} bytes, got {}",
                buf.len()
            )
            .into());
        }
        let u64_at = |at: usize| {
            let mut b = [0; 8];
            b.copy_from_slice(&buf[at..at + 8]);
            u64::from_ne_bytes(b)
        };
        Ok(XtSetInfoMatchV4 {
            match_set: XtSetInfo::parse(buf)?,
            packets: IpSetCounterMatch {
                value: u64_at(8),
                op: buf[16],
            },
            bytes: IpSetCounterMatch {
                value: u64_at(24),
                op: buf[32],
            },
            flags: u32::from_ne_bytes([buf[40], buf[41], buf[42], buf[43]]),
        })
    }
}
