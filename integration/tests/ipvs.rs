//! IPVS virtual services and real servers programmed through our client,
//! checked with `ipvsadm -Ln` / `ipvsadm -Sn` and read back through our own
//! dumps (a round trip through the kernel).

use std::net::IpAddr;

use kipvs_integration::{
    operator::{lines, IpvsTable},
    TestNetns,
};
use kipvs_netlink::{Counters, ErrorClass, Family, Ipvs, IpvsChange};
use kipvs_packet_ipvs::{
    AddressFamily, Destination, Protocol, Service, ServiceFlags, ServiceKey, Timeouts,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tuple(addr: &str, protocol: Protocol, port: u16) -> ServiceKey {
    ServiceKey::Tuple {
        addr: ip(addr),
        protocol,
        port,
    }
}

fn dest(addr: &str, port: u16, weight: u32) -> Destination {
    Destination {
        weight,
        ..Destination::new(ip(addr), port)
    }
}

/// The table every test in this file starts from: one service of each kind
/// the proxy programs (TCP, UDP with persistence, SCTP with mh flags, IPv6,
/// fwmark).
fn fixture_changes() -> Vec<IpvsChange> {
    let web = tuple("10.96.0.10", Protocol::Tcp, 80);
    let dns = tuple("10.96.0.11", Protocol::Udp, 53);
    let sctp = tuple("10.96.0.12", Protocol::Sctp, 9000);
    let web6 = tuple("fd00::10", Protocol::Tcp, 80);
    let mut persistent = Service::new(dns, "wrr");
    persistent.flags = ServiceFlags::PERSISTENT;
    persistent.timeout = 600;
    let mut mh = Service::new(sctp, "mh");
    // mh-fallback and mh-port are the scheduler flags SCHED1 and SCHED2.
    mh.flags = ServiceFlags::SCHED1 | ServiceFlags::SCHED2;
    vec![
        IpvsChange::AddService(Service::new(web, "rr")),
        IpvsChange::AddDestination(web, dest("10.244.1.2", 8080, 1)),
        IpvsChange::AddDestination(web, dest("10.244.1.3", 8080, 2)),
        IpvsChange::AddService(persistent),
        IpvsChange::AddDestination(dns, dest("10.244.1.4", 5353, 1)),
        IpvsChange::AddService(mh),
        IpvsChange::AddDestination(sctp, dest("10.244.1.5", 9000, 1)),
        IpvsChange::AddService(Service::new(web6, "rr")),
        IpvsChange::AddDestination(web6, dest("fd00:244::2", 8080, 1)),
        IpvsChange::AddService(Service::new(
            ServiceKey::Fwmark {
                af: AddressFamily::Inet,
                mark: 100,
            },
            "rr",
        )),
    ]
}

#[test]
fn services_and_real_servers_show_in_ipvsadm_exactly_as_written() {
    let netns = TestNetns::new("ipvs");
    let counters = Counters::default();
    let c = counters.clone();
    let (services, web_dests, web6_dests, info) = netns.run(move || async move {
        let mut ipvs = Ipvs::open(c).await.unwrap();
        for (n, outcome) in ipvs.apply(&fixture_changes()).await.into_iter().enumerate() {
            outcome.unwrap_or_else(|e| panic!("change {n}: {e}"));
        }
        let services = ipvs.services().await.unwrap();
        let web_dests = ipvs
            .destinations(&tuple("10.96.0.10", Protocol::Tcp, 80))
            .await
            .unwrap();
        let web6_dests = ipvs
            .destinations(&tuple("fd00::10", Protocol::Tcp, 80))
            .await
            .unwrap();
        (services, web_dests, web6_dests, ipvs.info().await.unwrap())
    });

    let IpvsTable { header, blocks } = IpvsTable::read(&netns);
    assert_eq!(
        header,
        vec![
            format!(
                "IP Virtual Server version 1.2.1 (size={})",
                info.conn_tab_size
            ),
            "Prot LocalAddress:Port Scheduler Flags".to_string(),
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn".to_string(),
        ]
    );
    let mut want = vec![
        lines(&[
            "TCP  10.96.0.10:80 rr",
            "  -> 10.244.1.2:8080              Masq    1      0          0",
            "  -> 10.244.1.3:8080              Masq    2      0          0",
        ]),
        lines(&[
            "UDP  10.96.0.11:53 wrr persistent 600",
            "  -> 10.244.1.4:5353              Masq    1      0          0",
        ]),
        lines(&[
            "SCTP 10.96.0.12:9000 mh (mh-fallback,mh-port)",
            "  -> 10.244.1.5:9000              Masq    1      0          0",
        ]),
        lines(&[
            "TCP  [fd00::10]:80 rr",
            "  -> [fd00:244::2]:8080           Masq    1      0          0",
        ]),
        lines(&["FWM  100 rr"]),
    ];
    want.sort();
    assert_eq!(blocks, want);

    let mut saved: Vec<String> = netns
        .exec(&["ipvsadm", "-Sn"])
        .lines()
        .map(str::to_owned)
        .collect();
    saved.sort();
    let mut want_saved = lines(&[
        "-A -t 10.96.0.10:80 -s rr",
        "-a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1",
        "-a -t 10.96.0.10:80 -r 10.244.1.3:8080 -m -w 2",
        "-A -u 10.96.0.11:53 -s wrr -p 600",
        "-a -u 10.96.0.11:53 -r 10.244.1.4:5353 -m -w 1",
        "-A --sctp-service 10.96.0.12:9000 -s mh -b mh-fallback,mh-port",
        "-a --sctp-service 10.96.0.12:9000 -r 10.244.1.5:9000 -m -w 1",
        "-A -t [fd00::10]:80 -s rr",
        "-a -t [fd00::10]:80 -r [fd00:244::2]:8080 -m -w 1",
        "-A -f 100 -s rr",
    ]);
    want_saved.sort();
    assert_eq!(saved, want_saved);

    // Round trip: our own dumps give back what we wrote, HASHED masked.
    let mut written: Vec<Service> = fixture_changes()
        .into_iter()
        .filter_map(|c| match c {
            IpvsChange::AddService(s) => Some(s),
            _ => None,
        })
        .collect();
    let mut read: Vec<Service> = services
        .into_iter()
        .map(|s| Service { stats: None, ..s })
        .collect();
    let order = |s: &Service| format!("{:?}", s.key);
    written.sort_by_key(order);
    read.sort_by_key(order);
    assert_eq!(read, written);
    let mut web: Vec<(IpAddr, u16, u32)> = web_dests
        .iter()
        .map(|d| (d.addr, d.port, d.weight))
        .collect();
    web.sort();
    assert_eq!(
        web,
        vec![(ip("10.244.1.2"), 8080, 1), (ip("10.244.1.3"), 8080, 2)]
    );
    assert_eq!(web6_dests.len(), 1);
    assert_eq!(
        (web6_dests[0].addr, web6_dests[0].port),
        (ip("fd00:244::2"), 8080)
    );

    // One message per change, one dump for all services.
    let sent = counters.snapshot();
    assert_eq!(sent.sent(Family::Ipvs, "NEW_SERVICE"), 5);
    assert_eq!(sent.sent(Family::Ipvs, "NEW_DEST"), 5);
    assert_eq!(sent.sent(Family::Ipvs, "GET_SERVICE"), 1);
    // Family look-up, the ten changes in one sendmsg, then one per dump
    // (services, two destination dumps) and GET_INFO.
    assert_eq!(sent.sendmsg(Family::Ipvs), 1 + 1 + 3 + 1);
    assert_eq!(sent.received(Family::Ipvs, "ack"), 1 + 10 + 1);
}

#[test]
fn services_and_real_servers_change_in_place_and_go_away() {
    let netns = TestNetns::new("ipvs-edit");
    let web = tuple("10.96.0.10", Protocol::Tcp, 80);
    netns.run(move || async move {
        let mut ipvs = Ipvs::open(Counters::default()).await.unwrap();
        for outcome in ipvs.apply(&fixture_changes()).await {
            outcome.unwrap();
        }
        // Session affinity switched on in place, one real server drained.
        let mut sticky = Service::new(web, "sh");
        sticky.flags = ServiceFlags::PERSISTENT;
        sticky.timeout = 10800;
        let changes = [
            IpvsChange::UpdateService(sticky.clone()),
            IpvsChange::UpdateDestination(web, dest("10.244.1.2", 8080, 0)),
            IpvsChange::DeleteDestination(web, ip("10.244.1.3"), 8080),
            IpvsChange::DeleteService(tuple("fd00::10", Protocol::Tcp, 80)),
        ];
        for outcome in ipvs.apply(&changes).await {
            outcome.unwrap();
        }
        let read = ipvs.service(&web).await.unwrap().unwrap();
        assert_eq!(
            Service {
                stats: None,
                ..read
            },
            sticky
        );
        assert_eq!(
            ipvs.service(&tuple("fd00::10", Protocol::Tcp, 80))
                .await
                .unwrap(),
            None
        );
    });
    let listed = netns.exec(&["ipvsadm", "-Ln", "-t", "10.96.0.10:80"]);
    // `-t` lists one service under the two column-header lines, without the
    // version line.
    let body: Vec<&str> = listed.lines().skip(2).map(str::trim_end).collect();
    assert_eq!(
        body,
        vec![
            "TCP  10.96.0.10:80 sh persistent 10800",
            "  -> 10.244.1.2:8080              Masq    0      0          0",
        ]
    );
    assert!(!netns.exec(&["ipvsadm", "-Ln"]).contains("fd00::10"));
}

#[test]
fn one_bad_change_fails_alone_with_a_classified_error() {
    let netns = TestNetns::new("ipvs-errors");
    netns.run(move || async move {
        let mut ipvs = Ipvs::open(Counters::default()).await.unwrap();
        let a = tuple("10.96.0.20", Protocol::Tcp, 80);
        let b = tuple("10.96.0.21", Protocol::Tcp, 80);
        let c = tuple("10.96.0.22", Protocol::Tcp, 80);
        let outcomes = ipvs
            .apply(&[
                IpvsChange::AddService(Service::new(a, "rr")),
                IpvsChange::AddService(Service::new(b, "nosuch")),
                IpvsChange::AddService(Service::new(c, "rr")),
                IpvsChange::AddService(Service::new(a, "rr")),
                IpvsChange::DeleteService(tuple("10.96.0.99", Protocol::Tcp, 80)),
            ])
            .await;
        assert!(outcomes[0].is_ok());
        let bad = outcomes[1].as_ref().unwrap_err();
        // The kernel cannot find (or load) a scheduler module of that name.
        assert_eq!(bad.errno(), Some(libc::ENOENT), "{bad}");
        assert!(
            bad.to_string().starts_with("ipvs NEW_SERVICE failed"),
            "{bad}"
        );
        assert!(
            outcomes[2].is_ok(),
            "a failure must not stop the changes after it"
        );
        assert_eq!(
            outcomes[3].as_ref().unwrap_err().class(),
            ErrorClass::AlreadyExists
        );
        assert_eq!(
            outcomes[4].as_ref().unwrap_err().class(),
            ErrorClass::NotFound
        );
        let mut keys: Vec<String> = ipvs
            .services()
            .await
            .unwrap()
            .iter()
            .map(|s| format!("{:?}", s.key))
            .collect();
        keys.sort();
        assert_eq!(keys.len(), 2);
    });
}

#[test]
fn timeouts_info_zero_and_flush() {
    let netns = TestNetns::new("ipvs-config");
    netns.run(move || async move {
        let mut ipvs = Ipvs::open(Counters::default()).await.unwrap();
        let info = ipvs.info().await.unwrap();
        assert_eq!(info.version_triple(), (1, 2, 1));
        ipvs.set_timeouts(&Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        })
        .await
        .unwrap();
        assert_eq!(
            ipvs.timeouts().await.unwrap(),
            Timeouts {
                tcp: 900,
                tcp_fin: 120,
                udp: 300
            }
        );
        for outcome in ipvs.apply(&fixture_changes()).await {
            outcome.unwrap();
        }
        ipvs.zero(None).await.unwrap();
        ipvs.zero(Some(&tuple("10.96.0.10", Protocol::Tcp, 80)))
            .await
            .unwrap();
        ipvs.flush().await.unwrap();
        assert!(ipvs.services().await.unwrap().is_empty());
    });
    let timeouts = netns.exec(&["ipvsadm", "-Ln", "--timeout"]);
    assert_eq!(timeouts.trim(), "Timeout (tcp tcpfin udp): 900 120 300");
}

#[test]
fn many_services_go_out_in_few_sendmsg_calls_and_read_back_through_concurrent_dumps() {
    let netns = TestNetns::new("ipvs-many");
    let counters = Counters::default();
    let c = counters.clone();
    netns.run(move || async move {
        let mut ipvs = Ipvs::open(c.clone()).await.unwrap();
        let keys: Vec<ServiceKey> = (0..500u32)
            .map(|i| ServiceKey::Tuple {
                addr: IpAddr::from([10, 97, (i / 250) as u8, (i % 250) as u8 + 1]),
                protocol: Protocol::Tcp,
                port: 80,
            })
            .collect();
        let mut changes = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            changes.push(IpvsChange::AddService(Service::new(*key, "rr")));
            for d in 0..2u8 {
                let addr = IpAddr::from([10, 244, (i / 250) as u8, (i % 250) as u8 + 1]);
                changes.push(IpvsChange::AddDestination(
                    *key,
                    dest(&addr.to_string(), 8080 + u16::from(d), 1),
                ));
            }
        }
        let before = c.snapshot();
        for (n, outcome) in ipvs.apply(&changes).await.into_iter().enumerate() {
            outcome.unwrap_or_else(|e| panic!("change {n}: {e}"));
        }
        let applied = c.snapshot().since(&before);
        // 1500 changes, at most 128 answers asked for per sendmsg.
        assert_eq!(applied.sendmsg(Family::Ipvs), 1500_u64.div_ceil(128));
        assert_eq!(applied.received(Family::Ipvs, "ack"), 1500);

        let before = c.snapshot();
        let all = ipvs.destinations_of(&keys).await;
        let read = c.snapshot().since(&before);
        for (key, dests) in keys.iter().zip(all) {
            let dests = dests.unwrap_or_else(|e| panic!("{key:?}: {e}"));
            assert_eq!(dests.len(), 2, "{key:?}");
        }
        // One dump per service, none refused or repeated: they ran on
        // several sockets at once instead of one after another.
        assert_eq!(read.sent(Family::Ipvs, "GET_DEST"), 500, "{read}");
        assert_eq!(read.received(Family::Ipvs, "done"), 500, "{read}");
        assert_eq!(read.received(Family::Ipvs, "error"), 0, "{read}");
        assert_eq!(ipvs.services().await.unwrap().len(), 500);
    });
}
