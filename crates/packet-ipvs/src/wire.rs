//! Small value codecs shared by the attribute modules.
//!
//! Parsing a string attribute needs nothing of ours: netlink-packet-core's
//! `parse_string` strips the one trailing NUL that these emit. The core
//! crate has no emitting counterpart, hence the two below.

/// Bytes of a NUL-terminated string attribute (`NLA_NUL_STRING` in the
/// kernel policy, `nla_put_string` / `NLA_PUT_STRING` on both sides).
pub(crate) fn nul_string_len(s: &str) -> usize {
    s.len() + 1
}

pub(crate) fn emit_nul_string(buffer: &mut [u8], s: &str) {
    buffer[..s.len()].copy_from_slice(s.as_bytes());
    buffer[s.len()] = 0;
}
