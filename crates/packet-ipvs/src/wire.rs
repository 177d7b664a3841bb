//! Small value codecs shared by the attribute modules.

use netlink_packet_core::{parse_string, DecodeError};

/// Bytes of a NUL-terminated string attribute (`NLA_NUL_STRING` in the
/// kernel policy, `nla_put_string` / `NLA_PUT_STRING` on both sides).
pub(crate) fn nul_string_len(s: &str) -> usize {
    s.len() + 1
}

pub(crate) fn emit_nul_string(buffer: &mut [u8], s: &str) {
    buffer[..s.len()].copy_from_slice(s.as_bytes());
    buffer[s.len()] = 0;
}

pub(crate) fn parse_nul_string(payload: &[u8]) -> Result<String, DecodeError> {
    // `parse_string` strips one trailing NUL, which is what we emit back.
    parse_string(payload)
}
