#![no_main]
// The input is the NLMSG_ERROR's flags (2 bytes, host order) and then its
// body: the error code, the echoed request, extended-ack TLVs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let [f0, f1, body @ ..] = data {
        kipvs_netlink::fuzzing::error_message(u16::from_ne_bytes([*f0, *f1]), body);
    }
});
