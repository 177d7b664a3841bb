//! Real connections through a ClusterIP, with only our code programming the
//! kernel: a node and two pods behind veths, where kube-ipvs0, its address,
//! the IPVS service, the ipsets, the nf_tables rules and the sysctls are all
//! written by kube-ipvs's kernel layer. The tools only build the pods and send the requests.
//!
//! Paths proven: node → ClusterIP, pod → ClusterIP → other pod, and hairpin
//! pod → ClusterIP → the same pod.

use std::{collections::BTreeSet, net::IpAddr};

use kipvs_integration::{http, pod, rules, TestNetns};
use kipvs_netlink::{set_sysctl, Counters, Ipset, Ipvs, IpvsChange, Links, NfTables};
use kipvs_packet_ipset::{CreateOptions, Entry};
use kipvs_packet_ipvs::{Destination, Protocol, Service, ServiceKey};

const TCP: u8 = 6;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn node_pod_and_hairpin_traffic_through_a_cluster_ip() {
    let node = TestNetns::new("node");
    let pod1 = pod(&node, 1, "10.244.1.2");
    let pod2 = pod(&node, 2, "10.244.1.3");
    // The node's own address (the probe's "pretend node IP").
    node.exec(&["ip", "addr", "add", "192.168.77.1/24", "dev", "lo"]);

    let (p1, p2) = (pod1.addr, pod2.addr);
    node.run(move || async move {
        for (name, value) in [
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv4.vs.conntrack", "1"),
            ("net.ipv4.vs.expire_nodest_conn", "1"),
            ("net.ipv4.vs.expire_quiescent_template", "1"),
        ] {
            set_sysctl(name, value).unwrap();
        }
        let counters = Counters::default();
        // Rules and sets first, addresses last: a service IP becomes
        // reachable only once everything behind it is in place.
        let mut ipset = Ipset::open(counters.clone()).unwrap();
        let opts = CreateOptions {
            comment: true,
            ..Default::default()
        };
        let mut nft = NfTables::open(counters.clone()).unwrap();
        rules::install_masquerade(&mut ipset, &mut nft, &opts, (ip("10.244.0.0"), 16)).await;
        ipset
            .add(
                "KUBE-CLUSTER-IP",
                &[
                    Entry::ip_port(ip("10.96.0.10"), TCP, 80).with_comment("default/web:http"),
                    Entry::ip_port(ip("10.96.0.11"), TCP, 80).with_comment("default/self:http"),
                ],
            )
            .await
            .unwrap();
        ipset
            .add(
                "KUBE-LOOP-BACK",
                &[
                    Entry::ip_port_ip(ip(p1), TCP, 8080, ip(p1)).with_comment("default/web:http"),
                    Entry::ip_port_ip(ip(p2), TCP, 8080, ip(p2)).with_comment("default/web:http"),
                ],
            )
            .await
            .unwrap();

        let mut ipvs = Ipvs::open(counters.clone()).await.unwrap();
        let web = ServiceKey::Tuple {
            addr: ip("10.96.0.10"),
            protocol: Protocol::Tcp,
            port: 80,
        };
        let only_pod1 = ServiceKey::Tuple {
            addr: ip("10.96.0.11"),
            protocol: Protocol::Tcp,
            port: 80,
        };
        let changes = [
            IpvsChange::AddService(Service::new(web, "rr")),
            IpvsChange::AddDestination(web, Destination::new(ip(p1), 8080)),
            IpvsChange::AddDestination(web, Destination::new(ip(p2), 8080)),
            IpvsChange::AddService(Service::new(only_pod1, "rr")),
            IpvsChange::AddDestination(only_pod1, Destination::new(ip(p1), 8080)),
        ];
        for outcome in ipvs.apply(&changes).await {
            outcome.unwrap();
        }
        let mut links = Links::open(counters).unwrap();
        let index = links.ensure_dummy("kube-ipvs0").await.unwrap();
        for outcome in links
            .add_addresses(index, &[ip("10.96.0.10"), ip("10.96.0.11")])
            .await
        {
            outcome.unwrap();
        }
    });

    let from_node = http(&node, "http://10.96.0.10/", 4);
    assert!(
        from_node.iter().all(|a| a == "pod1" || a == "pod2"),
        "node -> ClusterIP: {from_node:?}"
    );
    let spread: BTreeSet<&String> = from_node.iter().collect();
    assert_eq!(spread.len(), 2, "rr must reach both pods: {from_node:?}");

    let from_pod2 = http(&pod2.netns, "http://10.96.0.10/", 4);
    assert!(
        from_pod2.iter().all(|a| a == "pod1" || a == "pod2"),
        "pod -> ClusterIP: {from_pod2:?}"
    );
    assert!(
        from_pod2.iter().any(|a| a == "pod2"),
        "some requests hairpin back to pod2: {from_pod2:?}"
    );

    let hairpin = http(&pod1.netns, "http://10.96.0.11/", 3);
    assert_eq!(
        hairpin,
        vec!["pod1"; 3],
        "hairpin pod1 -> ClusterIP -> pod1"
    );

    let stats = node.exec(&["ipvsadm", "-Ln", "--stats"]);
    println!("{stats}");
}
