//! Schedulers (flag and annotations) and ClientIP session affinity.

mod common;

use common::*;
use kipvs_packet_ipvs::{ServiceFlags, IP_VS_SVC_F_PERSISTENT};
use kipvs_planner::*;
use serde_json::{json, Value};

/// default/web: LoadBalancer with cluster IP, node port, externalIP and
/// LB address, patched with `patch`.
fn web(patch: Value) -> std::sync::Arc<k8s_openapi::api::core::v1::Service> {
    let base = patched(
        node_port_svc(
            "LoadBalancer",
            "default",
            "web",
            &["10.96.0.10"],
            &[("", 80, "", 30080)],
        ),
        ingress(&["198.51.100.1"]),
    );
    patched(
        patched(base, json!({ "spec": { "externalIPs": ["203.0.113.7"] } })),
        patch,
    )
}

fn annotated(annotations: Value) -> std::sync::Arc<k8s_openapi::api::core::v1::Service> {
    web(json!({ "metadata": { "annotations": annotations } }))
}

/// (scheduler, flags, timeout) of every virtual service; asserts there
/// are the four of `web` (cluster IP, node port, external IP, LB IP).
fn options(d: &Desired) -> Vec<(String, ServiceFlags, u32)> {
    assert_eq!(
        vs_keys(d),
        [
            "tcp 10.96.0.10:80",
            "tcp 192.168.50.10:30080",
            "tcp 198.51.100.1:80",
            "tcp 203.0.113.7:80"
        ]
    );
    d.virtual_services
        .values()
        .map(|vs| {
            (
                vs.service.scheduler.clone(),
                vs.service.flags,
                vs.service.timeout,
            )
        })
        .collect()
}

fn each(scheduler: &str, flags: u32, timeout: u32) -> Vec<(String, ServiceFlags, u32)> {
    vec![(scheduler.to_owned(), ServiceFlags(flags), timeout); 4]
}

fn node() -> NodeConfig {
    config_with_addresses(&["192.168.50.10"])
}

#[test]
fn the_annotation_sets_the_scheduler_of_every_virtual_service() {
    let d = desired(
        &[annotated(json!({ SCHEDULER_ANNOTATION: "wlc" }))],
        &[],
        &node(),
    );
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(options(&d), each("wlc", 0, 0));
}

#[test]
fn sh_with_flags() {
    let services = [annotated(json!({
        SCHEDULER_ANNOTATION: "sh",
        SCHEDULER_FLAGS_ANNOTATION: "sh-fallback,sh-port",
    }))];
    let d = desired(&services, &[], &node());
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(options(&d), each("sh", 0x08 | 0x10, 0));
}

#[test]
fn mh_always_falls_back_from_weight_zero() {
    let d = desired(
        &[annotated(json!({ SCHEDULER_ANNOTATION: "mh" }))],
        &[],
        &node(),
    );
    assert_eq!(options(&d), each("mh", 0x08, 0));
    let services = [annotated(json!({
        SCHEDULER_ANNOTATION: "mh",
        SCHEDULER_FLAGS_ANNOTATION: "mh-port",
    }))];
    let d = desired(&services, &[], &node());
    assert_eq!(options(&d), each("mh", 0x08 | 0x10, 0));
    // The same for --ipvs-scheduler mh.
    let mut config = node();
    config.scheduler = "mh".into();
    let d = desired(&[web(json!({}))], &[], &config);
    assert_eq!(options(&d), each("mh", 0x08, 0));
}

#[test]
fn bad_annotations_warn_and_fall_back_to_the_default() {
    let cases = [
        (
            json!({ SCHEDULER_ANNOTATION: "fastest" }),
            "annotation ipvs.kube-ipvs.io/scheduler: unknown IPVS scheduler \"fastest\"",
        ),
        (
            json!({ SCHEDULER_ANNOTATION: "rr", SCHEDULER_FLAGS_ANNOTATION: "turbo" }),
            "annotation ipvs.kube-ipvs.io/scheduler-flags: unknown scheduler flag \"turbo\"",
        ),
        (
            json!({ SCHEDULER_ANNOTATION: "wrr", SCHEDULER_FLAGS_ANNOTATION: "mh-port" }),
            "scheduler flag \"mh-port\" needs scheduler mh, not wrr",
        ),
    ];
    let mut config = node();
    config.scheduler = "lc".into();
    for (annotations, reason) in cases {
        let d = desired(&[annotated(annotations)], &[], &config);
        let warnings = warning_lines(&d);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("Service default/web: "),
            "{warnings:?}"
        );
        assert!(warnings[0].contains(reason), "{warnings:?}");
        assert!(
            warnings[0].ends_with("using the default scheduler lc"),
            "{warnings:?}"
        );
        assert_eq!(options(&d), each("lc", 0, 0));
    }
}

#[test]
fn client_ip_affinity_is_persistence_on_every_virtual_service() {
    let d = desired(
        &[web(json!({ "spec": { "sessionAffinity": "ClientIP" } }))],
        &[],
        &node(),
    );
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(options(&d), each("rr", IP_VS_SVC_F_PERSISTENT, 10800));
    // The netmask stays the default.
    let vs = &d.virtual_services[&tcp_key("10.96.0.10", 80)];
    assert_eq!(vs.service.netmask, 0xffff_ffff);

    let services = [web(json!({
        "metadata": { "annotations": { SCHEDULER_ANNOTATION: "sh", SCHEDULER_FLAGS_ANNOTATION: "sh-port" } },
        "spec": {
            "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": { "clientIP": { "timeoutSeconds": 600 } },
        },
    }))];
    let d = desired(&services, &[], &node());
    // sh-port as asked, sh-fallback always (a draining real server must
    // not refuse the clients hashed to it).
    assert_eq!(
        options(&d),
        each("sh", IP_VS_SVC_F_PERSISTENT | 0x08 | 0x10, 600)
    );
}

#[test]
fn an_invalid_affinity_timeout_warns_and_uses_the_default() {
    let services = [web(json!({ "spec": {
        "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": { "clientIP": { "timeoutSeconds": 0 } },
    } }))];
    let d = desired(&services, &[], &node());
    assert_eq!(
        warning_lines(&d),
        ["Service default/web: invalid sessionAffinityConfig.clientIP.timeoutSeconds 0; using 10800"]
    );
    assert_eq!(options(&d), each("rr", IP_VS_SVC_F_PERSISTENT, 10800));
}

#[test]
fn changing_affinity_updates_the_services_in_place() {
    let before = desired(&[web(json!({}))], &[], &node());
    let after = desired(
        &[web(json!({ "spec": { "sessionAffinity": "ClientIP" } }))],
        &[],
        &node(),
    );
    let p = plan(&after, &observed_from(&before), &Default::default());
    assert_eq!(
        lines(&p),
        [
            "[default/web] update service tcp 10.96.0.10:80 rr",
            "[default/web] update service tcp 192.168.50.10:30080 rr",
            "[default/web] update service tcp 198.51.100.1:80 rr",
            "[default/web] update service tcp 203.0.113.7:80 rr",
        ]
    );
}
