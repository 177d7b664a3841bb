//! The KUBE-* ipsets created, filled and read back through our client, and
//! checked with `ipset save` / `ipset list`.

use std::net::IpAddr;

use kipvs_integration::{operator::ipset_save_lines, TestNetns};
use kipvs_netlink::{Counters, ErrorClass, Family, Ipset};
use kipvs_packet_ipset::{CreateOptions, Entry, SetFamily, SetType};

const TCP: u8 = 6;
const UDP: u8 = 17;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn hash(comment: bool) -> CreateOptions {
    CreateOptions {
        hash_size: Some(1024),
        max_elem: Some(65536),
        comment,
        port_range: None,
    }
}

#[test]
fn kube_proxy_sets_are_created_filled_and_saved_as_the_tool_shows_them() {
    let netns = TestNetns::new("ipset");
    let counters = Counters::default();
    let c = counters.clone();
    let listed = netns.run(move || async move {
        let mut ipset = Ipset::open(c).unwrap();
        let (max, min) = ipset.protocol().await.unwrap();
        assert!(min <= 7 && 6 <= max, "protocol range {min}..={max}");
        ipset
            .create(
                "KUBE-CLUSTER-IP",
                &SetType::HashIpPort,
                SetFamily::Inet,
                &hash(true),
            )
            .await
            .unwrap();
        // Creating an identical set again is success (-exist).
        ipset
            .create(
                "KUBE-CLUSTER-IP",
                &SetType::HashIpPort,
                SetFamily::Inet,
                &hash(true),
            )
            .await
            .unwrap();
        ipset
            .create(
                "KUBE-LOOP-BACK",
                &SetType::HashIpPortIp,
                SetFamily::Inet,
                &hash(true),
            )
            .await
            .unwrap();
        ipset
            .create(
                "KUBE-6-CLUSTER-IP",
                &SetType::HashIpPort,
                SetFamily::Inet6,
                &hash(true),
            )
            .await
            .unwrap();
        ipset
            .create(
                "KUBE-IPVS-IPS",
                &SetType::HashIp,
                SetFamily::Inet,
                &hash(true),
            )
            .await
            .unwrap();
        ipset
            .create(
                "KUBE-LOAD-BALANCER-SOURCE-CIDR",
                &SetType::HashIpPortNet,
                SetFamily::Inet,
                &hash(true),
            )
            .await
            .unwrap();
        let bitmap = CreateOptions {
            port_range: Some((0, 65535)),
            ..Default::default()
        };
        ipset
            .create(
                "KUBE-NODE-PORT-TCP",
                &SetType::BitmapPort,
                SetFamily::Unspec,
                &bitmap,
            )
            .await
            .unwrap();

        ipset
            .add(
                "KUBE-CLUSTER-IP",
                &[
                    Entry::ip_port(ip("10.96.0.10"), TCP, 80).with_comment("default/web:http"),
                    Entry::ip_port(ip("10.96.0.11"), UDP, 53)
                        .with_comment("kube-system/kube-dns:dns"),
                ],
            )
            .await
            .unwrap();
        // Adding a present entry again is success.
        ipset
            .add(
                "KUBE-CLUSTER-IP",
                &[Entry::ip_port(ip("10.96.0.10"), TCP, 80).with_comment("default/web:http")],
            )
            .await
            .unwrap();
        ipset
            .add(
                "KUBE-LOOP-BACK",
                &[
                    Entry::ip_port_ip(ip("10.244.1.2"), TCP, 8080, ip("10.244.1.2"))
                        .with_comment("default/web:http"),
                ],
            )
            .await
            .unwrap();
        ipset
            .add(
                "KUBE-6-CLUSTER-IP",
                &[Entry::ip_port(ip("fd00::10"), UDP, 53).with_comment("default/dns6:dns")],
            )
            .await
            .unwrap();
        ipset
            .add(
                "KUBE-IPVS-IPS",
                &[Entry::ip(ip("10.96.0.10")).with_comment("default/web")],
            )
            .await
            .unwrap();
        ipset
            .add(
                "KUBE-LOAD-BALANCER-SOURCE-CIDR",
                &[
                    Entry::ip_port_net(ip("203.0.113.10"), TCP, 80, ip("198.51.100.0"), 24)
                        .with_comment("default/lb:http"),
                ],
            )
            .await
            .unwrap();
        ipset
            .add("KUBE-NODE-PORT-TCP", &[Entry::port(30080)])
            .await
            .unwrap();

        assert!(ipset
            .test(
                "KUBE-CLUSTER-IP",
                &Entry::ip_port(ip("10.96.0.10"), TCP, 80)
            )
            .await
            .unwrap());
        assert!(!ipset
            .test(
                "KUBE-CLUSTER-IP",
                &Entry::ip_port(ip("10.96.0.10"), TCP, 81)
            )
            .await
            .unwrap());
        ipset.list_all().await.unwrap()
    });

    // Round trip: what we read back is what we wrote.
    let cluster = listed.iter().find(|s| s.name == "KUBE-CLUSTER-IP").unwrap();
    assert_eq!(cluster.type_name, "hash:ip,port");
    assert!(cluster.comment);
    let mut entries: Vec<String> = cluster.entries.iter().map(ToString::to_string).collect();
    entries.sort();
    assert_eq!(
        entries,
        vec![
            "10.96.0.10,tcp:80 comment \"default/web:http\"",
            "10.96.0.11,udp:53 comment \"kube-system/kube-dns:dns\"",
        ]
    );
    let six = listed
        .iter()
        .find(|s| s.name == "KUBE-6-CLUSTER-IP")
        .unwrap();
    assert_eq!(six.set_family(), SetFamily::Inet6);
    assert_eq!(
        six.entries[0].to_string(),
        "fd00::10,udp:53 comment \"default/dns6:dns\""
    );
    assert_eq!(listed.len(), 6);

    // The operator's view: `ipset save`, line for line. The kernel picks
    // a random hash seed (initval) per set, and lists hash members in hash
    // order, so the seed is cut and the lines compared sorted.
    let saved = netns.exec(&["ipset", "save"]);
    let got = ipset_save_lines(&saved);
    let mut want = vec![
        "create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 comment bucketsize 12",
        "add KUBE-CLUSTER-IP 10.96.0.10,tcp:80 comment \"default/web:http\"",
        "add KUBE-CLUSTER-IP 10.96.0.11,udp:53 comment \"kube-system/kube-dns:dns\"",
        "create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536 comment bucketsize 12",
        "add KUBE-LOOP-BACK 10.244.1.2,tcp:8080,10.244.1.2 comment \"default/web:http\"",
        "create KUBE-6-CLUSTER-IP hash:ip,port family inet6 hashsize 1024 maxelem 65536 comment bucketsize 12",
        "add KUBE-6-CLUSTER-IP fd00::10,udp:53 comment \"default/dns6:dns\"",
        "create KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 65536 comment bucketsize 12",
        "add KUBE-IPVS-IPS 10.96.0.10 comment \"default/web\"",
        "create KUBE-LOAD-BALANCER-SOURCE-CIDR hash:ip,port,net family inet hashsize 1024 maxelem 65536 comment bucketsize 12",
        "add KUBE-LOAD-BALANCER-SOURCE-CIDR 203.0.113.10,tcp:80,198.51.100.0/24 comment \"default/lb:http\"",
        "create KUBE-NODE-PORT-TCP bitmap:port range 0-65535",
        "add KUBE-NODE-PORT-TCP 30080",
    ];
    want.sort();
    assert_eq!(got, want, "ipset save:\n{saved}");
    assert_eq!(
        counters.snapshot().sent(Family::Ipset, "LIST"),
        1,
        "one dump lists every set"
    );
}

#[test]
fn large_changes_are_batched_and_a_bad_entry_is_named_in_the_error() {
    let netns = TestNetns::new("ipset-batch");
    let counters = Counters::default();
    let c = counters.clone();
    netns.run(move || async move {
        let mut ipset = Ipset::open(c.clone()).unwrap();
        ipset
            .create(
                "KUBE-CLUSTER-IP",
                &SetType::HashIpPort,
                SetFamily::Inet,
                &hash(true),
            )
            .await
            .unwrap();
        let entries: Vec<Entry> = (0..1000u32)
            .map(|i| {
                let addr = IpAddr::from([10, 96, (i / 250) as u8, (i % 250) as u8]);
                Entry::ip_port(addr, TCP, 80).with_comment(format!("ns/svc-{i}:http"))
            })
            .collect();
        let before = c.snapshot();
        ipset.add("KUBE-CLUSTER-IP", &entries).await.unwrap();
        let delta = c.snapshot().since(&before);
        let adds = delta.sent(Family::Ipset, "ADD");
        assert!(
            (8..=20).contains(&adds),
            "1000 entries in {adds} ADT messages"
        );
        // Pipelined: every page in one sendmsg, every ack collected.
        assert_eq!(delta.sendmsg(Family::Ipset), 1);
        assert_eq!(delta.received(Family::Ipset, "ack"), adds);
        let set = ipset.list("KUBE-CLUSTER-IP").await.unwrap().unwrap();
        assert_eq!(set.entries.len(), 1000);

        // An IPv6 element cannot go into an inet set: the error names it.
        let bad = vec![
            Entry::ip_port(IpAddr::from([10, 96, 9, 1]), TCP, 80),
            Entry::ip_port(ip("fd00::1"), TCP, 80),
        ];
        let err = ipset.add("KUBE-CLUSTER-IP", &bad).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Fatal, "{err}");
        assert!(
            err.to_string()
                .contains("set KUBE-CLUSTER-IP, entry fd00::1,tcp:80"),
            "{err}"
        );

        ipset.del("KUBE-CLUSTER-IP", &entries[..500]).await.unwrap();
        // Deleting them again is success.
        ipset.del("KUBE-CLUSTER-IP", &entries[..10]).await.unwrap();
        let set = ipset.list("KUBE-CLUSTER-IP").await.unwrap().unwrap();
        // 500 left plus the one good element of the failed batch.
        assert_eq!(set.entries.len(), 501);

        let index = ipset.index("KUBE-CLUSTER-IP").await.unwrap();
        assert_eq!(Some(index), set.index);
        ipset
            .create(
                "KUBE-CLUSTER-IP-NEW",
                &SetType::HashIpPort,
                SetFamily::Inet,
                &hash(true),
            )
            .await
            .unwrap();
        ipset
            .swap("KUBE-CLUSTER-IP", "KUBE-CLUSTER-IP-NEW")
            .await
            .unwrap();
        assert_eq!(
            ipset
                .list("KUBE-CLUSTER-IP")
                .await
                .unwrap()
                .unwrap()
                .entries
                .len(),
            0
        );
        ipset.flush("KUBE-CLUSTER-IP-NEW").await.unwrap();
        ipset
            .rename("KUBE-CLUSTER-IP-NEW", "KUBE-OLD")
            .await
            .unwrap();
        ipset.destroy("KUBE-OLD").await.unwrap();
        ipset.destroy("KUBE-OLD").await.unwrap();
        assert_eq!(ipset.list("KUBE-OLD").await.unwrap(), None);
    });
    let saved = netns.exec(&["ipset", "list", "-n"]);
    assert_eq!(saved.trim(), "KUBE-CLUSTER-IP");
}
