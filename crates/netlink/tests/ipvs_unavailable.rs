//! On a kernel without IPVS (the development and CI hosts), opening the IPVS
//! client fails with the message the operator needs, not a panic; on a
//! kernel with IPVS it succeeds. Either way the outcome must agree with
//! what the kernel shows in /proc.

use kipvs_netlink::{Counters, Error, Ipvs};

#[tokio::test]
async fn missing_ipvs_is_reported_clearly() {
    let outcome = Ipvs::open(Counters::default()).await;
    // The family look-up may auto-load ip_vs, so look at /proc afterwards.
    let kernel_has_ipvs = std::path::Path::new("/proc/net/ip_vs").exists();
    match outcome {
        Err(e @ Error::IpvsUnavailable) => {
            assert!(
                !kernel_has_ipvs,
                "IPVS is loaded but the client said it is not"
            );
            assert_eq!(
                e.to_string(),
                "IPVS is not available in this kernel (genl family IPVS not found): load the ip_vs module"
            );
        }
        Ok(_) => assert!(
            kernel_has_ipvs,
            "the client opened IPVS but /proc/net/ip_vs is missing"
        ),
        Err(other) => panic!("unexpected error: {other}"),
    }
}
