//! Parsing of manifest files (the offline source), kept free of I/O so every rule is unit-tested:
//! a file is split into YAML documents, each document is parsed on its own (a broken one is
//! reported and skipped, the others still apply), then turned into a typed object by its
//! `apiVersion`/`kind`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use serde_json::Value;

use crate::selector;
use crate::snapshot::{object_key, Snapshot};

/// The YAML parser's node and event budget per document. Its defaults
/// (250,000 nodes, 1,000,000 events) refuse an EndpointSlice of more than
/// about 25,000 endpoints; an endpoint written out in full (addresses,
/// conditions, node, zone, target) costs about 25 nodes and 30 events, so
/// these fit 100,000 of them with room. Aliases are limited on their own,
/// and that limit is what stops an alias bomb.
const MAX_NODES: usize = 4_000_000;
const MAX_EVENTS: usize = 8_000_000;
/// Events replayed from aliases per document (the parser's default is
/// 1,000,000). Manifests use aliases for a few repeated labels at most, and
/// a lower limit stops an alias bomb ten times sooner.
const MAX_REPLAYED_EVENTS: usize = 100_000;

fn parser_options(max_nodes: usize, max_events: usize) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_nodes = max_nodes;
    budget.max_events = max_events;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = MAX_REPLAYED_EVENTS;
    options
}

/// One object read from a manifest file (shared, so snapshots reuse it without copying).
#[derive(Debug, Clone, PartialEq)]
pub enum ManifestObject {
    Service(Arc<Service>),
    EndpointSlice(Arc<EndpointSlice>),
    Node(Arc<Node>),
}

/// A document of a manifest file that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The file name, as given to [`parse_manifest`].
    pub file: String,
    /// 1-based line of the document's first line of content (after any `---` and comments).
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// Parses the text of one manifest file holding any number of YAML documents separated by `---`.
///
/// Returns the objects of the documents that parsed, in file order, and one error per document
/// that did not. Empty documents (only comments or blank lines) are neither. Services and
/// EndpointSlices carrying kube-proxy's excluding labels are dropped silently, as the API server
/// would filter them with the label selector. Namespaced objects without a namespace get
/// `default`, like `kubectl apply` does. Nodes are all returned: the sources keep only
/// the one named like this node.
pub fn parse_manifest(file_name: &str, text: &str) -> (Vec<ManifestObject>, Vec<ManifestError>) {
    parse_with_budget(file_name, text, MAX_NODES, MAX_EVENTS)
}

fn parse_with_budget(
    file_name: &str,
    text: &str,
    max_nodes: usize,
    max_events: usize,
) -> (Vec<ManifestObject>, Vec<ManifestError>) {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for document in split_documents(text) {
        let error = |reason: String| ManifestError {
            file: file_name.to_string(),
            line: document.content_line,
            reason,
        };
        let value = match serde_saphyr::from_str_with_options::<Value>(
            &document.text,
            parser_options(max_nodes, max_events),
        ) {
            Ok(value) => value,
            Err(parse_error) => {
                let reason = budget_reason(&parse_error, max_nodes, max_events)
                    .unwrap_or_else(|| yaml_reason(&parse_error, document.first_line));
                errors.push(error(reason));
                continue;
            }
        };
        match object_from_value(value) {
            Ok(Some(object)) => objects.push(object),
            Ok(None) => {}
            Err(reason) => errors.push(error(reason)),
        }
    }
    (objects, errors)
}

/// Builds the snapshot the manifests describe for node `node_name`: the last definition of an
/// object wins when several documents define the same (namespace, name), and only the Node named
/// `node_name` is kept.
pub(crate) fn assemble<'a>(
    objects: impl IntoIterator<Item = &'a ManifestObject>,
    node_name: &str,
) -> Snapshot {
    let mut services = BTreeMap::new();
    let mut slices = BTreeMap::new();
    let mut node = None;
    for object in objects {
        match object {
            ManifestObject::Service(service) => {
                if services.insert(object_key(&**service), service).is_some() {
                    tracing::warn!(object = %describe(&**service), "defined more than once; the last definition wins");
                }
            }
            ManifestObject::EndpointSlice(slice) => {
                if slices.insert(object_key(&**slice), slice).is_some() {
                    tracing::warn!(object = %describe(&**slice), "defined more than once; the last definition wins");
                }
            }
            ManifestObject::Node(candidate) if candidate.name_any() == node_name => {
                node = Some(candidate.clone());
            }
            ManifestObject::Node(_) => {}
        }
    }
    Snapshot::new(
        services.into_values().cloned().collect(),
        slices.into_values().cloned().collect(),
        node,
    )
}

fn describe<K: ResourceExt>(object: &K) -> String {
    let (namespace, name) = object_key(object);
    format!("{namespace}/{name}")
}

/// One YAML document cut out of a file.
#[derive(Debug, PartialEq)]
struct RawDocument {
    /// The document's text; its first line is file line `first_line` (a `---` marker on that
    /// line is blanked out, so parser columns and lines still map onto the file).
    text: String,
    first_line: usize,
    /// The first line holding content: where a reader looks for the document.
    content_line: usize,
}

/// Splits a YAML stream at its document markers. Done by hand (rather than with the parser's
/// multi-document API) because a syntax error there ends the whole stream, while a broken document
/// must not hide the ones after it. Markers only count at column 0, as in YAML; a document-end
/// marker `...` closes the document. Directive lines (`%YAML`) are dropped.
fn split_documents(text: &str) -> Vec<RawDocument> {
    let mut documents = Vec::new();
    let mut current = RawDocument {
        text: String::new(),
        first_line: 1,
        content_line: 0,
    };
    let mut finish = |document: RawDocument| {
        if document.content_line != 0 {
            documents.push(document);
        }
    };
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if let Some(rest) = marker_rest(line, "---") {
            let blanked = format!("   {rest}");
            let next = RawDocument {
                content_line: if has_content(&blanked) { number } else { 0 },
                text: blanked + "\n",
                first_line: number,
            };
            finish(std::mem::replace(&mut current, next));
        } else if marker_rest(line, "...").is_some() {
            let next = RawDocument {
                text: String::new(),
                first_line: number + 1,
                content_line: 0,
            };
            finish(std::mem::replace(&mut current, next));
        } else if line.starts_with('%') {
            // A directive belongs to the next document; keep line numbers aligned.
            current.text.push('\n');
        } else {
            if current.content_line == 0 && has_content(line) {
                current.content_line = number;
            }
            current.text.push_str(line);
            current.text.push('\n');
        }
    }
    finish(current);
    documents
}

/// For a line starting with a document marker (followed by nothing or whitespace), the rest.
fn marker_rest<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(marker)?;
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then_some(rest)
}

fn has_content(line: &str) -> bool {
    let trimmed = line.trim_start();
    !trimmed.is_empty() && !trimmed.starts_with('#')
}

/// The parser's reason, with its position translated from the document to the file.
fn yaml_reason(error: &serde_saphyr::Error, first_line: usize) -> String {
    let message = error.without_snippet().to_string();
    match error.location() {
        Some(location) if location.line() > 0 => {
            // The parser appends the position relative to the document; report the file's.
            let relative = format!(" at line {}, column {}", location.line(), location.column());
            let message = message.strip_suffix(&relative).unwrap_or(&message);
            let line = first_line + location.line() as usize - 1;
            format!(
                "invalid YAML at line {line}, column {}: {message}",
                location.column()
            )
        }
        _ => format!("invalid YAML: {message}"),
    }
}

/// For a document refused by the parser's resource limits, a reason that
/// says which limit, in words an operator can act on.
fn budget_reason(
    error: &serde_saphyr::Error,
    max_nodes: usize,
    max_events: usize,
) -> Option<String> {
    use serde_saphyr::{budget::BudgetBreach, Error};
    let mut error = error;
    while let Error::AliasError { error: inner, .. } | Error::WithSnippet { error: inner, .. } =
        error
    {
        error = inner;
    }
    let alias_bomb =
        "alias expansion over the YAML parser's budget (an alias bomb?): document skipped";
    Some(match error {
        Error::AliasReplayCounterOverflow { .. }
        | Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. }
        | Error::AliasReplayStackDepthExceeded { .. } => alias_bomb.to_owned(),
        Error::Budget { breach, .. } => match breach {
            BudgetBreach::Aliases { .. }
            | BudgetBreach::Anchors { .. }
            | BudgetBreach::AliasAnchorRatio { .. }
            | BudgetBreach::RecordedAnchorEvents { .. }
            | BudgetBreach::RecordedAnchorBytes { .. } => alias_bomb.to_owned(),
            BudgetBreach::Nodes { .. } => format!(
                "document over the YAML parser's budget of {max_nodes} nodes: document skipped"
            ),
            BudgetBreach::Events { .. } => format!(
                "document over the YAML parser's budget of {max_events} events: document skipped"
            ),
            other => {
                format!("document over the YAML parser's budget ({other:?}): document skipped")
            }
        },
        _ => return None,
    })
}

/// Turns one parsed document into an object: `Ok(None)` for an empty document or an object
/// kube-proxy does not watch, `Err(reason)` when the document is not a supported object.
fn object_from_value(value: Value) -> Result<Option<ManifestObject>, String> {
    let map = match &value {
        Value::Null => return Ok(None),
        Value::Object(map) => map,
        other => return Err(format!("expected a mapping, found {}", json_type(other))),
    };
    let field = |name: &str| match map.get(name) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(format!(
            "{name} must be a string, found {}",
            json_type(other)
        )),
        None => Err(format!("{name} is missing")),
    };
    let (api_version, kind) = (field("apiVersion")?, field("kind")?);
    let object = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Service") => ManifestObject::Service(Arc::new(typed::<Service>(value, true)?)),
        ("discovery.k8s.io/v1", "EndpointSlice") => {
            ManifestObject::EndpointSlice(Arc::new(typed::<EndpointSlice>(value, true)?))
        }
        ("v1", "Node") => ManifestObject::Node(Arc::new(typed::<Node>(value, false)?)),
        _ => {
            return Err(format!(
                "unsupported object {api_version} {kind}: expected v1 Service, \
                 discovery.k8s.io/v1 EndpointSlice or v1 Node"
            ))
        }
    };
    let selected = match &object {
        ManifestObject::Service(service) => selector::is_selected(service.metadata.labels.as_ref()),
        ManifestObject::EndpointSlice(slice) => {
            selector::is_selected(slice.metadata.labels.as_ref())
        }
        ManifestObject::Node(_) => true,
    };
    if !selected {
        tracing::debug!(
            ?kind,
            "skipping an object labelled for another proxy or headless"
        );
        return Ok(None);
    }
    Ok(Some(object))
}

/// Deserializes a document of a known kind; `namespaced` objects default to namespace `default`.
fn typed<K>(value: Value, namespaced: bool) -> Result<K, String>
where
    K: serde::de::DeserializeOwned + ResourceExt,
{
    let mut object: K =
        serde_json::from_value(value).map_err(|e| format!("invalid object: {e}"))?;
    if object.meta().name.as_deref().unwrap_or_default().is_empty() {
        return Err("metadata.name is missing".to_string());
    }
    if namespaced && object.meta().namespace.is_none() {
        object.meta_mut().namespace = Some("default".to_string());
    }
    Ok(object)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(objects: &[ManifestObject]) -> Vec<String> {
        objects
            .iter()
            .map(|object| match object {
                ManifestObject::Service(s) => format!("Service {}", describe(&**s)),
                ManifestObject::EndpointSlice(s) => format!("EndpointSlice {}", describe(&**s)),
                ManifestObject::Node(n) => format!("Node {}", n.name_any()),
            })
            .collect()
    }

    const SERVICE_WEB: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  clusterIP: 10.96.0.10
  ports:
  - name: http
    port: 80
    protocol: TCP
    targetPort: 8080
";

    const SLICE_WEB: &str = "\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: shop
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
endpoints:
- addresses: [10.244.1.5]
  conditions: {ready: true}
  nodeName: node-a
ports:
- name: http
  port: 8080
  protocol: TCP
";

    #[test]
    fn multi_document_file_with_comments_keeps_every_object_in_order() {
        let text = format!(
            "# shop manifests\n---\n{SERVICE_WEB}---   # the slice\n# more comments\n{SLICE_WEB}\n---\n# empty document\n---\napiVersion: v1\nkind: Node\nmetadata: {{name: node-a}}\n...\n"
        );
        let (objects, errors) = parse_manifest("shop.yaml", &text);
        assert_eq!(errors, []);
        assert_eq!(
            names(&objects),
            [
                "Service shop/web",
                "EndpointSlice shop/web-abc",
                "Node node-a"
            ]
        );
        let ManifestObject::Service(service) = &objects[0] else {
            panic!("not a service: {:?}", objects[0]);
        };
        let spec = service.spec.as_ref().expect("spec");
        assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.10"));
        let port = &spec.ports.as_ref().expect("ports")[0];
        assert_eq!((port.name.as_deref(), port.port), (Some("http"), 80));
        let ManifestObject::EndpointSlice(slice) = &objects[1] else {
            panic!("not a slice: {:?}", objects[1]);
        };
        assert_eq!(slice.address_type, "IPv4");
        assert_eq!(slice.endpoints[0].addresses, ["10.244.1.5"]);
        assert_eq!(slice.endpoints[0].node_name.as_deref(), Some("node-a"));
    }

    #[test]
    fn bad_document_in_the_middle_is_reported_at_its_start_and_the_others_kept() {
        // Lines 1-12: service; 13: ---; 14: comment; 15-17: broken YAML; 18: ---; 19...: slice.
        let text = format!(
            "{SERVICE_WEB}---\n# broken\napiVersion: v1\nkind: Service\nmetadata: [unclosed\n---\n{SLICE_WEB}"
        );
        assert_eq!(SERVICE_WEB.lines().count(), 12);
        let (objects, errors) = parse_manifest("mixed.yaml", &text);
        assert_eq!(
            names(&objects),
            ["Service shop/web", "EndpointSlice shop/web-abc"]
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].file, "mixed.yaml");
        assert_eq!(errors[0].line, 15);
        assert!(
            errors[0].reason.starts_with("invalid YAML at line "),
            "{}",
            errors[0]
        );
        assert!(
            errors[0].to_string().starts_with("mixed.yaml:15: "),
            "{}",
            errors[0]
        );
        eprintln!("{}", errors[0]);
    }

    #[test]
    fn parser_positions_are_translated_to_file_lines() {
        let text = "a: 1\n---\nb: 2\n  c: d\n";
        let (objects, errors) = parse_manifest("pos.yaml", text);
        assert_eq!(objects, []);
        // Document 1 is not an object; document 2 is broken on file line 4.
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(
            (errors[0].line, errors[0].reason.as_str()),
            (1, "apiVersion is missing")
        );
        assert_eq!(errors[1].line, 3);
        assert!(
            errors[1]
                .reason
                .starts_with("invalid YAML at line 4, column 4: "),
            "{}",
            errors[1].reason
        );
        assert!(
            !errors[1].reason.ends_with("column 4"),
            "{}",
            errors[1].reason
        );
    }

    #[test]
    fn unknown_kinds_and_wrong_shapes_are_errors() {
        let text = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
---
apiVersion: v1
kind: EndpointSlice
metadata: {name: wrong-group}
---
- just
- a list
---
apiVersion: v1
kind: Service
metadata: {name: bad-port}
spec:
  ports: [{port: eighty}]
---
apiVersion: v1
kind: Service
metadata: {namespace: x}
---
kind: Service
metadata: {name: no-version}
";
        let (objects, errors) = parse_manifest("odd.yaml", text);
        assert_eq!(objects, []);
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 5, 9, 12, 18, 22], "{errors:?}");
        assert!(errors[0]
            .reason
            .contains("unsupported object apps/v1 Deployment"));
        assert!(errors[1]
            .reason
            .contains("unsupported object v1 EndpointSlice"));
        assert_eq!(errors[2].reason, "expected a mapping, found a sequence");
        assert!(
            errors[3].reason.starts_with("invalid object: "),
            "{}",
            errors[3]
        );
        assert_eq!(errors[4].reason, "metadata.name is missing");
        assert_eq!(errors[5].reason, "apiVersion is missing");
    }

    #[test]
    fn objects_for_other_proxies_and_headless_slices_are_skipped() {
        let text = format!(
            "{SERVICE_WEB}---
apiVersion: v1
kind: Service
metadata:
  name: other-proxy
  labels: {{service.kubernetes.io/service-proxy-name: cilium}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: headless-xyz
  labels: {{service.kubernetes.io/headless: \"\"}}
addressType: IPv4
endpoints: []
---
apiVersion: v1
kind: Node
metadata:
  name: node-a
  labels: {{service.kubernetes.io/headless: \"\"}}
"
        );
        let (objects, errors) = parse_manifest("labels.yaml", &text);
        assert_eq!(errors, []);
        // The selector is for Services and EndpointSlices only, never for Nodes.
        assert_eq!(names(&objects), ["Service shop/web", "Node node-a"]);
    }

    #[test]
    fn missing_namespace_defaults_to_default() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: bare}\n";
        let (objects, _) = parse_manifest("bare.yaml", text);
        assert_eq!(names(&objects), ["Service default/bare"]);
    }

    #[test]
    fn assemble_keeps_only_our_node_and_the_last_duplicate() {
        let text = format!(
            "{SERVICE_WEB}---
apiVersion: v1
kind: Node
metadata: {{name: node-b}}
---
apiVersion: v1
kind: Node
metadata: {{name: node-a, labels: {{topology.kubernetes.io/zone: z1}}}}
---
{}",
            SERVICE_WEB.replace("10.96.0.10", "10.96.0.99")
        );
        let (objects, errors) = parse_manifest("all.yaml", &text);
        assert_eq!(errors, []);
        let snapshot = assemble(&objects, "node-a");
        let node = snapshot.node().expect("our node");
        assert_eq!(node.name_any(), "node-a");
        assert_eq!(node.labels()["topology.kubernetes.io/zone"], "z1");
        assert_eq!(snapshot.services().len(), 1);
        let spec = snapshot.services()[0].spec.as_ref().expect("spec");
        assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.99"));

        assert_eq!(assemble(&objects, "node-c").node(), None);
    }

    #[test]
    fn empty_and_comment_only_files_hold_nothing() {
        for text in [
            "",
            "\n\n",
            "# nothing\n",
            "---\n---\n# x\n",
            "%YAML 1.2\n---\n",
        ] {
            assert_eq!(parse_manifest("e.yaml", text), (vec![], vec![]), "{text:?}");
        }
    }

    #[test]
    fn markers_need_column_zero_and_whitespace() {
        let docs = split_documents("a: '---'\n---x: 1\n ---\n--- b: 2\n");
        let starts: Vec<(usize, usize)> = docs
            .iter()
            .map(|d| (d.first_line, d.content_line))
            .collect();
        assert_eq!(starts, [(1, 1), (4, 4)]);
        assert_eq!(docs[1].text, "    b: 2\n");
    }

    /// An EndpointSlice of `count` endpoints in block style, each as a
    /// controller writes it (addresses, conditions, node, zone, target).
    fn big_slice(count: usize) -> String {
        let mut text = String::from(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: big-1\n  namespace: shop\n  labels:\n    kubernetes.io/service-name: big\naddressType: IPv4\nports:\n- name: http\n  port: 8080\n  protocol: TCP\nendpoints:\n",
        );
        for i in 0..count {
            text.push_str(&format!(
                "- addresses:\n  - 10.{}.{}.{}\n  conditions:\n    ready: true\n    serving: true\n    terminating: false\n  nodeName: node-a\n  zone: z1\n  targetRef:\n    kind: Pod\n    name: big-{i}\n    namespace: shop\n",
                i / 65536,
                i / 256 % 256,
                i % 256
            ));
        }
        text
    }

    #[test]
    fn an_endpoint_slice_of_100k_endpoints_parses() {
        let (objects, errors) = parse_manifest("big.yaml", &big_slice(100_000));
        assert_eq!(errors, vec![]);
        let [ManifestObject::EndpointSlice(slice)] = &objects[..] else {
            panic!("{}", names(&objects).join(", "))
        };
        assert_eq!(slice.endpoints.len(), 100_000);
        assert_eq!(slice.endpoints[99_999].addresses, vec!["10.1.134.159"]);
    }

    #[test]
    fn a_billion_laughs_document_is_rejected_with_its_reason() {
        // Nine levels of nine aliases: 9^9 strings once expanded.
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..=9 {
            let prev = format!("*a{}", level - 1);
            text.push_str(&format!(
                "a{level}: &a{level} [{}]\n",
                [prev.as_str(); 9].join(", ")
            ));
        }
        let text = format!("{SERVICE_WEB}---\n{text}---\n{SLICE_WEB}");
        let (objects, errors) = parse_manifest("laughs.yaml", &text);
        assert_eq!(
            names(&objects),
            vec!["Service shop/web", "EndpointSlice shop/web-abc"],
            "the documents around it still apply"
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, 14);
        assert!(
            errors[0].reason.contains("alias") && errors[0].reason.contains("budget"),
            "{}",
            errors[0]
        );
        // A few aliases, as hand-written manifests use them, are fine.
        let aliased = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop, labels: &app {app: web}}\nspec:\n  clusterIP: 10.96.0.10\n  selector: *app\n  ports: [{port: 80}]\n";
        let (objects, errors) = parse_manifest("aliased.yaml", aliased);
        assert_eq!(errors, vec![]);
        assert_eq!(names(&objects), vec!["Service shop/web"]);
    }

    #[test]
    fn a_document_over_the_node_budget_says_so() {
        // The budget made small, so the test need not build millions of
        // nodes: the slice has 38, the service 27.
        let text = format!("{SLICE_WEB}---\n{SERVICE_WEB}");
        let (objects, errors) = parse_with_budget("huge.yaml", &text, 32, 1000);
        assert_eq!(names(&objects), vec!["Service shop/web"]);
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "huge.yaml:1: document over the YAML parser's budget of 32 nodes: document skipped"
        );
        let (_, errors) = parse_with_budget("huge.yaml", SERVICE_WEB, 1000, 10);
        assert_eq!(
            errors[0].reason,
            "document over the YAML parser's budget of 10 events: document skipped"
        );
    }
}
