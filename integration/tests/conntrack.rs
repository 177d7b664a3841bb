//! Stale UDP conntrack entries found and deleted through our client, checked
//! with `conntrack -L`.

use kipvs_integration::TestNetns;
use kipvs_netlink::{Conntrack, Counters, Family, FlowFilter};

#[test]
fn udp_flows_are_dumped_filtered_and_deleted_by_tuple() {
    let netns = TestNetns::new("conntrack");
    // Conntrack hooks are registered lazily; a rule that uses ct registers
    // them in this namespace.
    netns.exec(&["nft", "add table ip probe"]);
    netns.exec(&[
        "nft",
        "add chain ip probe out { type filter hook output priority 0; }",
    ]);
    netns.exec(&["nft", "add rule ip probe out ct state new counter"]);

    let counters = Counters::default();
    let c = counters.clone();
    let (before, deleted, after) = netns.run(move || async move {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.send_to(b"x", "127.0.0.1:9999").unwrap();
        socket.send_to(b"y", "127.0.0.1:8888").unwrap();
        let mut conntrack = Conntrack::open(c).unwrap();
        let udp = FlowFilter {
            protocol: Some(17),
            ..Default::default()
        };
        let before = conntrack.flows(false, &udp).await.unwrap();
        let stale = FlowFilter {
            protocol: Some(17),
            original_dport: Some(9999),
            ..Default::default()
        };
        let deleted = conntrack.delete_matching(false, &stale).await.unwrap();
        let after = conntrack.flows(false, &udp).await.unwrap();
        (before, deleted, after)
    });
    let mut ports: Vec<u16> = before.iter().map(|f| f.original.dport).collect();
    ports.sort();
    assert_eq!(ports, vec![8888, 9999]);
    assert_eq!(deleted, 1);
    assert_eq!(
        after.iter().map(|f| f.original.dport).collect::<Vec<_>>(),
        vec![8888]
    );

    let listed = netns.exec(&["conntrack", "-L", "-p", "udp"]);
    assert!(listed.contains("dport=8888"), "{listed}");
    assert!(!listed.contains("dport=9999"), "{listed}");
    // Three dumps, one delete.
    let sent = counters.snapshot();
    assert_eq!(sent.sent(Family::Conntrack, "CT_GET"), 3);
    assert_eq!(sent.sent(Family::Conntrack, "CT_DELETE"), 1);
}
