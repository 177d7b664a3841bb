//! The funnel's matching logic against hand-made kernel answers.

use netlink_packet_core::{
    DecodeError, NetlinkDeserializable, NetlinkHeader, NetlinkSerializable, NLM_F_CREATE,
    NLM_F_MULTIPART,
};

use super::*;
use crate::ErrorClass;

/// A message type with no structure, so the funnel can be tested without a
/// protocol crate.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Raw {
    message_type: u16,
    body: Vec<u8>,
}

const RAW_TYPE: u16 = 0x100;

impl NetlinkSerializable for Raw {
    fn message_type(&self) -> u16 {
        self.message_type
    }
    fn buffer_len(&self) -> usize {
        self.body.len()
    }
    fn serialize(&self, buffer: &mut [u8]) {
        buffer.copy_from_slice(&self.body);
    }
}

impl NetlinkDeserializable for Raw {
    type Error = DecodeError;
    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, DecodeError> {
        if payload.first() == Some(&0xff) {
            return Err("body starts with 0xff".into());
        }
        Ok(Raw {
            message_type: header.message_type,
            body: payload.to_vec(),
        })
    }
}

impl MessageKind for Raw {
    fn kind(&self) -> &'static str {
        "RAW"
    }
}

fn raw(body: &[u8]) -> Raw {
    Raw {
        message_type: RAW_TYPE,
        body: body.to_vec(),
    }
}

/// A kernel message: nlmsghdr + body, padded to 4 bytes.
fn kernel_message(message_type: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let length = 16 + body.len();
    let mut out = Vec::new();
    out.extend_from_slice(&(length as u32).to_ne_bytes());
    out.extend_from_slice(&message_type.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&4242u32.to_ne_bytes());
    out.extend_from_slice(body);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

/// `NLMSG_ERROR` with `code` and a capped copy of the request header.
fn ack(seq: u32, code: i32) -> Vec<u8> {
    let mut body = code.to_ne_bytes().to_vec();
    body.extend_from_slice(&[0; 16]);
    kernel_message(2, NLM_F_CAPPED, seq, &body)
}

fn done(seq: u32) -> Vec<u8> {
    kernel_message(3, NLM_F_MULTIPART, seq, &0i32.to_ne_bytes())
}

fn setup(requests: &[Request<Raw>]) -> (Encoded, Exchange<Raw>, Counters) {
    let counters = Counters::default();
    let mut seq = 7;
    let (encoded, slots) = encode(Family::Ipvs, requests, &mut seq, &counters);
    let exchange = Exchange::new(Family::Ipvs, &slots);
    (encoded, exchange, counters)
}

#[test]
fn pipelines_changes_into_one_datagram_and_settles_each_by_its_ack() {
    let requests: Vec<_> = (0..3)
        .map(|i| Request::ack(raw(&[i, 0, 0, 0]), NLM_F_CREATE))
        .collect();
    let (encoded, mut exchange, counters) = setup(&requests);
    assert_eq!(
        encoded.datagrams.len(),
        1,
        "three small requests share one sendmsg"
    );
    let (bytes, seqs) = &encoded.datagrams[0];
    assert_eq!(seqs, &vec![7, 8, 9]);
    assert_eq!(bytes.len(), 3 * 20);
    // Each request carries REQUEST|ACK|CREATE.
    assert_eq!(u16::from_ne_bytes([bytes[6], bytes[7]]), 0x1 | 0x4 | 0x400);

    // Acks may arrive in any order and several per datagram.
    let mut answer = ack(9, 0);
    answer.extend(ack(7, 0));
    exchange.on_datagram(&answer, &counters);
    assert!(!exchange.settled(seqs));
    exchange.on_datagram(&ack(8, -libc::EEXIST), &counters);
    assert!(exchange.settled(seqs));

    let outcomes = exchange.finish();
    assert!(outcomes[0].as_ref().unwrap().is_empty());
    let err = outcomes[1].as_ref().unwrap_err();
    assert_eq!(err.errno(), Some(libc::EEXIST));
    assert_eq!(err.class(), ErrorClass::AlreadyExists);
    assert!(outcomes[2].is_ok());

    let counts = counters.snapshot();
    assert_eq!(counts.sent(Family::Ipvs, "RAW"), 3);
    assert_eq!(counts.received(Family::Ipvs, "ack"), 2);
    assert_eq!(counts.received(Family::Ipvs, "error"), 1);
}

#[test]
fn a_dump_travels_alone_and_collects_every_part_until_done() {
    let requests = vec![
        Request::ack(raw(&[1, 0, 0, 0]), 0),
        Request::dump(raw(&[2, 0, 0, 0]), 0),
        Request::ack(raw(&[3, 0, 0, 0]), 0),
    ];
    let (encoded, mut exchange, counters) = setup(&requests);
    let seqs: Vec<_> = encoded.datagrams.iter().map(|(_, s)| s.clone()).collect();
    assert_eq!(seqs, vec![vec![7], vec![8], vec![9]]);
    let dump_flags = u16::from_ne_bytes([encoded.datagrams[1].0[6], encoded.datagrams[1].0[7]]);
    assert_eq!(dump_flags, 0x1 | 0x300);

    exchange.on_datagram(&ack(7, 0), &counters);
    let mut parts = kernel_message(RAW_TYPE, NLM_F_MULTIPART, 8, &[10, 0, 0, 0]);
    parts.extend(kernel_message(RAW_TYPE, NLM_F_MULTIPART, 8, &[11, 0, 0, 0]));
    exchange.on_datagram(&parts, &counters);
    assert!(!exchange.settled(&[8]));
    let mut tail = kernel_message(RAW_TYPE, NLM_F_MULTIPART, 8, &[12, 0, 0, 0]);
    tail.extend(done(8));
    exchange.on_datagram(&tail, &counters);
    assert!(exchange.settled(&[8]));
    exchange.on_datagram(&ack(9, 0), &counters);

    let outcomes = exchange.finish();
    let dumped: Vec<u8> = outcomes[1]
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.body[0])
        .collect();
    assert_eq!(dumped, vec![10, 11, 12]);
    assert_eq!(counters.snapshot().received(Family::Ipvs, "RAW"), 3);
}

#[test]
fn a_direct_reply_before_the_ack_is_returned() {
    let (_, mut exchange, counters) = setup(&[Request::ack(raw(&[1, 0, 0, 0]), 0)]);
    let mut answer = kernel_message(RAW_TYPE, 0, 7, &[5, 6, 7, 8]);
    answer.extend(ack(7, 0));
    exchange.on_datagram(&answer, &counters);
    let outcomes = exchange.finish();
    assert_eq!(
        outcomes[0].as_ref().unwrap(),
        &vec![Raw {
            message_type: RAW_TYPE,
            body: vec![5, 6, 7, 8]
        }]
    );
}

#[test]
fn unanswered_requests_are_settled_at_once_and_stale_answers_ignored() {
    let requests = vec![
        Request::unanswered(raw(&[0, 0, 0, 0]), 0),
        Request::ack(raw(&[1, 0, 0, 0]), 0),
        Request::unanswered(raw(&[2, 0, 0, 0]), 0),
    ];
    let (encoded, mut exchange, counters) = setup(&requests);
    assert_eq!(encoded.datagrams.len(), 1);
    assert!(exchange.settled(&[7, 9]));
    assert!(!exchange.settled(&[8]));
    // An ack for a sequence number from an abandoned exchange.
    exchange.on_datagram(&ack(3, 0), &counters);
    assert!(!exchange.settled(&[8]));
    exchange.on_datagram(&ack(8, 0), &counters);
    assert!(exchange.finish().iter().all(Result::is_ok));
    assert_eq!(counters.snapshot().received(Family::Ipvs, "stale"), 1);
}

#[test]
fn an_undecodable_reply_fails_only_its_own_request() {
    let requests = vec![Request::dump(raw(&[1, 0, 0, 0]), 0)];
    let (_, mut exchange, counters) = setup(&requests);
    let mut answer = kernel_message(RAW_TYPE, NLM_F_MULTIPART, 7, &[0xff, 0, 0, 0]);
    answer.extend(done(7));
    exchange.on_datagram(&answer, &counters);
    let outcomes = exchange.finish();
    assert!(
        matches!(outcomes[0], Err(Error::Decode { .. })),
        "{:?}",
        outcomes[0]
    );
}

#[test]
fn requests_never_answered_become_retryable_no_answer() {
    let (_, mut exchange, _) = setup(&[Request::ack(raw(&[1, 0, 0, 0]), 0)]);
    exchange.abandon(|family, kind| Error::NoAnswer {
        family,
        kind,
        seconds: 30,
    });
    let outcomes = exchange.finish();
    assert_eq!(
        outcomes[0].as_ref().unwrap_err().class(),
        ErrorClass::Retryable
    );
}

#[test]
fn large_batches_split_at_the_datagram_limit_without_splitting_a_message() {
    let body = vec![1u8; 1000];
    let requests: Vec<_> = (0..200).map(|_| Request::ack(raw(&body), 0)).collect();
    let (encoded, _, _) = setup(&requests);
    assert!(encoded.datagrams.len() >= 4);
    for (bytes, seqs) in &encoded.datagrams {
        assert!(bytes.len() <= MAX_DATAGRAM);
        assert_eq!(bytes.len(), seqs.len() * 1016);
    }
    let total: usize = encoded.datagrams.iter().map(|(_, s)| s.len()).sum();
    assert_eq!(total, 200);
}

#[test]
fn a_datagram_asks_for_no_more_answers_than_the_receive_buffer_holds() {
    let acks: Vec<_> = (0..300).map(|_| Request::ack(raw(&[0; 4]), 0)).collect();
    let (encoded, _, _) = setup(&acks);
    let sizes: Vec<usize> = encoded.datagrams.iter().map(|(_, s)| s.len()).collect();
    assert_eq!(
        sizes,
        vec![ANSWER_BUDGET, ANSWER_BUDGET, 300 - 2 * ANSWER_BUDGET]
    );
}

#[test]
fn reads_the_extended_ack_text() {
    // NLMSG_ERROR body after the code: capped request header, then
    // NLMSGERR_ATTR_MSG "Invalid argument detail\0".
    let mut after_code = vec![0u8; 16];
    let text = b"bad scheduler\0";
    let len = (4 + text.len()) as u16;
    after_code.extend_from_slice(&len.to_ne_bytes());
    after_code.extend_from_slice(&1u16.to_ne_bytes());
    after_code.extend_from_slice(text);
    assert_eq!(
        ext_ack_message(NLM_F_CAPPED | NLM_F_ACK_TLVS, &after_code).as_deref(),
        Some("bad scheduler")
    );
    assert_eq!(ext_ack_message(NLM_F_CAPPED, &after_code), None);
}

#[test]
fn an_error_code_that_cannot_be_negated_is_fatal_and_kept_raw() {
    // i32::MIN has no positive counterpart: negating it overflows.
    let requests = vec![
        Request::ack(raw(&[1, 0, 0, 0]), 0),
        Request::dump(raw(&[2, 0, 0, 0]), 0),
    ];
    let (_, mut exchange, counters) = setup(&requests);
    exchange.on_datagram(&ack(7, i32::MIN), &counters);
    exchange.on_datagram(
        &kernel_message(3, NLM_F_MULTIPART, 8, &i32::MIN.to_ne_bytes()),
        &counters,
    );
    let outcomes = exchange.finish();
    for outcome in &outcomes {
        let err = outcome.as_ref().unwrap_err();
        assert_eq!(err.errno(), None, "no errno stands for it");
        assert!(matches!(err, Error::Kernel(k) if k.code == i32::MIN));
        assert_eq!(err.class(), ErrorClass::Fatal);
        assert!(
            err.to_string().contains(&i32::MIN.to_string()),
            "the raw code is reported: {err}"
        );
    }
}

#[test]
fn a_positive_error_code_is_fatal_and_kept_raw() {
    // The kernel only sends negative codes; a positive one is garbage and
    // must not turn into a negative "errno" that classifies by accident.
    let (_, mut exchange, counters) = setup(&[Request::ack(raw(&[1, 0, 0, 0]), 0)]);
    exchange.on_datagram(&ack(7, libc::ENOENT), &counters);
    let outcomes = exchange.finish();
    let err = outcomes[0].as_ref().unwrap_err();
    assert_eq!(err.class(), ErrorClass::Fatal);
    assert!(err.to_string().contains("invalid error code 2"), "{err}");
}
