//! The ipset client against the host kernel, in a network namespace of its
//! own (ipset works on the development and CI hosts; IPVS does not). Needs
//! root for the namespace: without it the test says so and checks nothing.

use std::net::IpAddr;

use kipvs_netlink::{Counters, Error, ErrorClass, Ipset};
use kipvs_packet_ipset::{
    constants::IPSET_MAX_COMMENT_SIZE, CreateOptions, Entry, SetFamily, SetType,
};
use nix::sched::{unshare, CloneFlags};

/// Runs `test` on a thread of its own moved into a fresh network namespace
/// (unshare affects only the calling thread), with a runtime on that thread
/// so every socket is opened there. `None` when namespaces are not allowed.
fn in_new_netns<T: Send + 'static>(
    test: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> Option<T> {
    std::thread::spawn(move || {
        if let Err(e) = unshare(CloneFlags::CLONE_NEWNET) {
            eprintln!("skipped: cannot create a network namespace ({e}); run as root");
            return None;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Some(runtime.block_on(test()))
    })
    .join()
    .unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn an_entry_with_an_oversized_comment_fails_its_step_by_name_and_the_others_are_added() {
    let outcome = in_new_netns(|| {
        Box::pin(async {
            let mut ipset = Ipset::open(Counters::default()).unwrap();
            let options = CreateOptions {
                comment: true,
                ..CreateOptions::default()
            };
            ipset
                .create(
                    "KUBE-FUZZ-T",
                    &SetType::HashIpPort,
                    SetFamily::Inet,
                    &options,
                )
                .await
                .unwrap();
            let mut entries: Vec<Entry> = (0..200u16)
                .map(|i| {
                    Entry::ip_port(ip("10.96.0.1"), 6, 1000 + i).with_comment("default/web:http")
                })
                .collect();
            entries[50] = entries[50].clone().with_comment("x".repeat(4000));
            entries[51] = entries[51]
                .clone()
                .with_comment("y".repeat(IPSET_MAX_COMMENT_SIZE));
            let err = ipset.add("KUBE-FUZZ-T", &entries).await.unwrap_err();
            let set = ipset.list("KUBE-FUZZ-T").await.unwrap().unwrap();
            (err, set)
        })
    });
    let Some((err, set)) = outcome else { return };
    assert!(matches!(err, Error::NotSent { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Fatal);
    let text = err.to_string();
    assert!(
        text.contains("set KUBE-FUZZ-T, entry 10.96.0.1,tcp:1050")
            && text.contains("line 51: comment of 4000 bytes"),
        "{text}"
    );
    // Every other entry made it, the longest comment the kernel takes too.
    assert_eq!(set.entries.len(), 199);
    assert!(set.entries.iter().any(|e| e
        .comment
        .as_deref()
        .is_some_and(|c| c.len() == IPSET_MAX_COMMENT_SIZE)));
    assert!(!set.entries.iter().any(|e| e.port == Some(1050)));
}
