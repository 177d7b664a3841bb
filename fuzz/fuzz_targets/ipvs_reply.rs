#![no_main]
// See kipvs_netlink::fuzzing::ipvs_datagram for what runs on the bytes.
libfuzzer_sys::fuzz_target!(|datagram: &[u8]| {
    kipvs_netlink::fuzzing::ipvs_datagram(datagram);
});
