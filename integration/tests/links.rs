//! kube-ipvs0 and its addresses, programmed through our rtnetlink client and
//! checked with `ip -j addr show`.

use std::net::IpAddr;

use kipvs_integration::TestNetns;
use kipvs_netlink::{Counters, Family, Links};

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn dummy_link_is_created_once_left_down_and_carries_host_addresses() {
    let netns = TestNetns::new("links");
    let counters = Counters::default();
    let c = counters.clone();
    let index = netns.run(move || async move {
        let mut links = Links::open(c).unwrap();
        let index = links.ensure_dummy("kube-ipvs0").await.unwrap();
        // Idempotent: a second call finds the same link.
        assert_eq!(links.ensure_dummy("kube-ipvs0").await.unwrap(), index);
        let wanted = [addr("10.96.0.10"), addr("10.96.0.11"), addr("fd00::10")];
        for outcome in links.add_addresses(index, &wanted).await {
            outcome.unwrap();
        }
        // Adding again is not an error (the address is already bound).
        for outcome in links.add_addresses(index, &wanted[..1]).await {
            outcome.unwrap();
        }
        let mut bound = links.addresses(index).await.unwrap();
        bound.sort();
        assert_eq!(
            bound,
            vec![addr("10.96.0.10"), addr("10.96.0.11"), addr("fd00::10")]
        );
        index
    });

    let show = netns.exec(&["ip", "-o", "addr", "show", "dev", "kube-ipvs0"]);
    let inet: Vec<&str> = show
        .lines()
        .map(|line| line.split_whitespace().nth(3).unwrap())
        .collect();
    assert_eq!(
        inet,
        vec!["10.96.0.10/32", "10.96.0.11/32", "fd00::10/128"],
        "{show}"
    );
    let link = netns.exec(&["ip", "-o", "link", "show", "kube-ipvs0"]);
    assert!(link.contains(&format!("{index}: kube-ipvs0:")), "{link}");
    assert!(
        link.contains("state DOWN"),
        "kube-ipvs0 must stay down: {link}"
    );
    assert!(netns
        .exec(&["ip", "-d", "link", "show", "kube-ipvs0"])
        .contains("dummy"));

    // The three addresses went out in one sendmsg.
    let snapshot = counters.snapshot();
    assert_eq!(snapshot.sent(Family::Route, "NEWADDR"), 4);
    // Two look-ups + create + look-up, then the 3 addresses, the 1 repeat,
    // and the address dump.
    assert_eq!(snapshot.sendmsg(Family::Route), 4 + 1 + 1 + 1);

    netns.run(move || async move {
        let mut links = Links::open(Counters::default()).unwrap();
        for outcome in links
            .del_addresses(index, &[addr("10.96.0.11"), addr("10.96.0.99")])
            .await
        {
            outcome.unwrap();
        }
    });
    let show = netns.exec(&["ip", "-o", "addr", "show", "dev", "kube-ipvs0"]);
    assert!(!show.contains("10.96.0.11/32"), "{show}");
    assert!(show.contains("10.96.0.10/32"), "{show}");

    netns.run(move || async move {
        let mut links = Links::open(Counters::default()).unwrap();
        links.delete_link(index).await.unwrap();
        assert_eq!(links.link_index("kube-ipvs0").await.unwrap(), None);
        // Deleting again is not an error.
        links.delete_link(index).await.unwrap();
    });
}

#[test]
fn local_addresses_come_from_one_dump_of_every_interface() {
    let netns = TestNetns::new("localaddr");
    netns.exec(&["ip", "addr", "add", "192.168.77.1/24", "dev", "lo"]);
    let counters = Counters::default();
    let c = counters.clone();
    let all = netns.run(move || async move {
        let mut links = Links::open(c).unwrap();
        links.all_addresses().await.unwrap()
    });
    let found: Vec<String> = all
        .iter()
        .map(|a| format!("{}/{}", a.address, a.prefix_len))
        .collect();
    assert!(found.contains(&"127.0.0.1/8".to_string()), "{found:?}");
    assert!(found.contains(&"192.168.77.1/24".to_string()), "{found:?}");
    assert_eq!(counters.snapshot().sent(Family::Route, "GETADDR"), 1);
}
