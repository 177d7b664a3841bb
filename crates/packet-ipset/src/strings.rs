//! NUL-terminated strings (`NLA_NUL_STRING` in the kernel policies).

use netlink_packet_core::DecodeError;

/// Length on the wire: the bytes plus the NUL (libipset sends
/// `strlen() + 1`, and the kernel's `nla_put_string` does the same).
pub(crate) fn nul_len(s: &str) -> usize {
    s.len() + 1
}

pub(crate) fn emit_nul(s: &str, buffer: &mut [u8]) {
    buffer[..s.len()].copy_from_slice(s.as_bytes());
    buffer[s.len()] = 0;
}

/// The kernel rejects a `NLA_NUL_STRING` without its NUL, so a missing one
/// is a decode error rather than something to guess around.
pub(crate) fn parse_nul(value: &[u8]) -> Result<String, DecodeError> {
    match value.iter().position(|b| *b == 0) {
        Some(end) if end + 1 == value.len() => Ok(String::from_utf8(value[..end].to_vec())?),
        Some(_) => Err("NUL inside a string attribute".into()),
        None => Err("string attribute without its terminating NUL".into()),
    }
}
