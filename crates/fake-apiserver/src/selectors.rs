//! `labelSelector` and `fieldSelector` query parameters, parsed and matched the way the API server
//! does for the selectors kube-rs and kube-proxy send.
//!
//! Label grammar (apimachinery `labels.Parse`): comma-separated requirements, all of which must
//! hold: `key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`.
//! As in apimachinery, `!=` and `notin` also match objects that do not carry the label at all.
//!
//! Field grammar: `metadata.name` and `metadata.namespace` with `=`, `==` or `!=`, the two fields
//! the generic registry supports for every resource.

use std::fmt;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError(pub String);

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SelectorError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelRequirement {
    Exists(String),
    NotExists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl LabelRequirement {
    fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        match self {
            Self::Exists(key) => get(key).is_some(),
            Self::NotExists(key) => get(key).is_none(),
            Self::Equals(key, value) => get(key) == Some(value.as_str()),
            Self::NotEquals(key, value) => get(key) != Some(value.as_str()),
            Self::In(key, values) => get(key).is_some_and(|v| values.iter().any(|x| x == v)),
            Self::NotIn(key, values) => !get(key).is_some_and(|v| values.iter().any(|x| x == v)),
        }
    }
}

/// A parsed `labelSelector`; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<LabelRequirement>);

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        split_top_level(text)
            .into_iter()
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(parse_label_requirement)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether an object (with `metadata.labels`) satisfies every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        self.0.iter().all(|r| r.matches(labels))
    }
}

/// Splits on commas that are not inside the parentheses of an `in (...)` set.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_label_requirement(part: &str) -> Result<LabelRequirement, SelectorError> {
    let invalid = || SelectorError(format!("invalid label selector requirement {part:?}"));
    let key = |k: &str| -> Result<String, SelectorError> {
        let k = k.trim();
        if k.is_empty() || k.contains(char::is_whitespace) {
            return Err(invalid());
        }
        Ok(k.to_string())
    };
    if let Some(rest) = part.strip_prefix('!') {
        return Ok(LabelRequirement::NotExists(key(rest)?));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(LabelRequirement::NotEquals(key(k)?, v.trim().to_string()));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(LabelRequirement::Equals(key(k)?, v.trim().to_string()));
    }
    for (operator, negated) in [(" notin ", true), (" in ", false)] {
        if let Some((k, set)) = part.split_once(operator) {
            let set = set
                .trim()
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'));
            let values: Vec<String> = set
                .ok_or_else(invalid)?
                .split(',')
                .map(|v| v.trim().to_string())
                .collect();
            let key = key(k)?;
            return Ok(if negated {
                LabelRequirement::NotIn(key, values)
            } else {
                LabelRequirement::In(key, values)
            });
        }
    }
    Ok(LabelRequirement::Exists(key(part)?))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Namespace,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldRequirement {
    field: Field,
    equal: bool,
    value: String,
}

/// A parsed `fieldSelector`; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<FieldRequirement>);

impl FieldSelector {
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, true, v)
            } else {
                return Err(SelectorError(format!(
                    "invalid field selector requirement {part:?}"
                )));
            };
            let field = match field.trim() {
                "metadata.name" => Field::Name,
                "metadata.namespace" => Field::Namespace,
                // The real server answers 400 for fields the resource does not index.
                other => return Err(SelectorError(format!("field label not supported: {other}"))),
            };
            requirements.push(FieldRequirement {
                field,
                equal,
                value: value.trim().to_string(),
            });
        }
        Ok(Self(requirements))
    }

    /// Adds `metadata.namespace=NAMESPACE`: a namespaced URL is the cluster-wide collection
    /// restricted to one namespace.
    pub fn and_namespace(mut self, namespace: &str) -> Self {
        self.0.push(FieldRequirement {
            field: Field::Namespace,
            equal: true,
            value: namespace.to_string(),
        });
        self
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|r| {
            let pointer = match r.field {
                Field::Name => "/metadata/name",
                Field::Namespace => "/metadata/namespace",
            };
            // A cluster-scoped object has namespace "" for field selection.
            let actual = object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("");
            (actual == r.value) == r.equal
        })
    }
}

/// Both selectors of one LIST or WATCH request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Self, SelectorError> {
        Ok(Self {
            labels: LabelSelector::parse(labels.unwrap_or(""))?,
            fields: FieldSelector::parse(fields.unwrap_or(""))?,
        })
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(labels: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default", "labels": labels}})
    }

    #[test]
    fn kube_proxy_selector_excludes_headless_and_foreign_proxies() {
        let selector = LabelSelector::parse(
            "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless",
        )
        .unwrap();
        assert!(selector.matches(&object(json!({"app": "web"}))));
        assert!(selector.matches(&json!({"metadata": {"name": "no-labels"}})));
        assert!(!selector.matches(&object(json!({"service.kubernetes.io/headless": ""}))));
        assert!(!selector.matches(&object(
            json!({"service.kubernetes.io/service-proxy-name": "x"})
        )));
    }

    #[test]
    fn equality_inequality_and_sets() {
        let web = object(json!({"app": "web", "tier": "front"}));
        let bare = object(json!({}));
        let cases = [
            ("app=web", true, false),
            ("app==web", true, false),
            ("app!=web", false, true),
            ("app!=db", true, true),
            ("app", true, false),
            ("app=web,tier=back", false, false),
            ("tier in (back, front)", true, false),
            ("tier notin (back,front),app", false, false),
            ("tier notin (back)", true, true),
            ("", true, true),
        ];
        for (text, on_web, on_bare) in cases {
            let selector = LabelSelector::parse(text).unwrap();
            assert_eq!(selector.matches(&web), on_web, "{text} on web");
            assert_eq!(selector.matches(&bare), on_bare, "{text} on bare");
        }
    }

    #[test]
    fn malformed_selectors_are_rejected() {
        assert!(LabelSelector::parse("a b").is_err());
        assert!(LabelSelector::parse("x in a,b").is_err());
        assert!(FieldSelector::parse("spec.clusterIP=1.2.3.4").is_err());
        assert!(FieldSelector::parse("metadata.name").is_err());
    }

    #[test]
    fn field_selector_matches_name_and_namespace() {
        let node = json!({"metadata": {"name": "node-a"}});
        assert!(FieldSelector::parse("metadata.name=node-a")
            .unwrap()
            .matches(&node));
        assert!(!FieldSelector::parse("metadata.name==node-b")
            .unwrap()
            .matches(&node));
        assert!(FieldSelector::parse("metadata.name!=node-b")
            .unwrap()
            .matches(&node));
        assert!(FieldSelector::parse("metadata.namespace=")
            .unwrap()
            .matches(&node));
        let svc = object(json!({}));
        assert!(
            FieldSelector::parse("metadata.namespace=default,metadata.name=web")
                .unwrap()
                .matches(&svc)
        );
        assert!(!FieldSelector::parse("metadata.namespace=kube-system")
            .unwrap()
            .matches(&svc));
    }
}
