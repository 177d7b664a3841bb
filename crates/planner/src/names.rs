//! How kube-proxy names a service port, and what a skipped object reports.

use std::{fmt, sync::Arc};

/// One Kubernetes service port: `namespace/name:portname`, or
/// `namespace/name` when the port is unnamed (kube-proxy's
/// `ServicePortName.String()`). This is also the comment of the service's
/// ipset entries, which is how [`ServicePortName::from_comment`] finds the
/// owner of kernel state again.
///
/// The parts are shared strings: every step, set entry and virtual service
/// of a service port names it, and a cold sync of ten thousand services
/// makes a hundred thousand steps: cloning a name must not allocate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServicePortName {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    /// The service port's `name`; empty for an unnamed port.
    pub port: Arc<str>,
}

impl ServicePortName {
    pub fn new(
        namespace: impl Into<Arc<str>>,
        name: impl Into<Arc<str>>,
        port: impl Into<Arc<str>>,
    ) -> Self {
        ServicePortName {
            namespace: namespace.into(),
            name: name.into(),
            port: port.into(),
        }
    }

    /// `namespace/name`, without the port.
    pub fn service(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The service this is a port of.
    pub fn service_id(&self) -> ServiceId {
        ServiceId {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// The comment of this service port's ipset entries: the
    /// [`Display`](fmt::Display) form, cut to the kernel's limit (see
    /// [`fit_comment`]).
    pub fn comment(&self) -> String {
        let port = if self.port.is_empty() {
            String::new()
        } else {
            format!(":{}", self.port)
        };
        fit_comment(&self.service(), &port)
    }

    /// The comment of entries that belong to the whole service
    /// (`KUBE-IPVS-IPS`): `namespace/name`, cut to the kernel's limit.
    pub fn service_comment(&self) -> String {
        fit_comment(&self.service(), "")
    }

    /// Reads back the [`Display`](fmt::Display) form (`ns/name:port` or
    /// `ns/name`), as kept in ipset entry comments. Namespaces, names and
    /// port names are DNS labels, so neither `/` nor `:` can be part of
    /// them; anything else is `None`.
    pub fn from_comment(comment: &str) -> Option<Self> {
        let (namespace, rest) = comment.split_once('/')?;
        let (name, port) = rest.split_once(':').unwrap_or((rest, ""));
        let valid = |s: &str| !s.contains(['/', ':', ' ', '"']);
        if namespace.is_empty() || name.is_empty() || !valid(name) || !valid(port) {
            return None;
        }
        Some(ServicePortName::new(namespace, name, port))
    }
}

impl fmt::Display for ServicePortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)?;
        if !self.port.is_empty() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// One Service: `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

impl ServiceId {
    pub fn new(namespace: impl Into<Arc<str>>, name: impl Into<Arc<str>>) -> Self {
        ServiceId {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// `IPSET_MAX_COMMENT_SIZE` (`linux/netfilter/ipset/ip_set.h`): the
/// longest entry comment, in bytes without the terminating NUL. The kernel
/// refuses a longer one (6.x: ipset error 4097, protocol error), which
/// would fail the entry on every sync.
pub const IPSET_MAX_COMMENT_SIZE: usize = 255;

/// `base` + `suffix` in at most [`IPSET_MAX_COMMENT_SIZE`] bytes: `base` is
/// cut on a UTF-8 character boundary so that `suffix` (the `:port` that
/// tells a service's ports apart) stays visible.
pub fn fit_comment(base: &str, suffix: &str) -> String {
    let suffix = cut_at_char_boundary(suffix, IPSET_MAX_COMMENT_SIZE);
    let room = IPSET_MAX_COMMENT_SIZE - suffix.len();
    let mut comment = cut_at_char_boundary(base, room).to_owned();
    comment.push_str(suffix);
    comment
}

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
pub(crate) fn cut_at_char_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let end = (0..=max)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    &text[..end]
}

/// Why `name` is not an RFC 1123 DNS label (what the API requires of
/// namespaces, and, relaxed, of Service names): at most 63 characters of
/// `a-z`, `0-9` and `-`, starting and ending with a letter or digit.
/// `None` when it is one.
pub(crate) fn dns_label_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".to_owned());
    }
    if name.len() > 63 {
        return Some(format!("is {} bytes long, more than 63", name.len()));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if let Some(c) = name.chars().find(|c| !allowed(*c)) {
        return Some(format!("contains {c:?} (only a-z, 0-9 and '-')"));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("starts or ends with '-'".to_owned());
    }
    None
}

/// Why `name` is not a valid service port name (the API's IANA_SVC_NAME:
/// at most 15 characters of `a-z`, `0-9` and `-`, at least one letter, no
/// `-` at either end or twice in a row). `None` when it is one.
pub(crate) fn port_name_problem(name: &str) -> Option<String> {
    if name.len() > 15 {
        return Some(format!("is {} bytes long, more than 15", name.len()));
    }
    if let Some(problem) = dns_label_problem(name) {
        return Some(problem);
    }
    if name.contains("--") {
        return Some("contains \"--\"".to_owned());
    }
    if !name.chars().any(|c| c.is_ascii_lowercase()) {
        return Some("has no letter".to_owned());
    }
    None
}

/// An object (or a part of it) that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Warning {
    /// `Service default/web` or `EndpointSlice default/web-abc`.
    pub object: String,
    pub reason: String,
}

impl Warning {
    pub(crate) fn new(object: impl Into<String>, reason: impl Into<String>) -> Self {
        Warning {
            object: object.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.reason)
    }
}

/// The warnings of one object, at most [`ObjectWarnings::MAX`] of them: an
/// object listing a hundred thousand bad addresses gets ten warnings and a
/// count, not a hundred thousand log lines.
pub(crate) struct ObjectWarnings<'a> {
    object: &'a str,
    warnings: &'a mut Vec<Warning>,
    count: usize,
}

impl<'a> ObjectWarnings<'a> {
    pub(crate) const MAX: usize = 10;

    pub(crate) fn new(object: &'a str, warnings: &'a mut Vec<Warning>) -> Self {
        ObjectWarnings {
            object,
            warnings,
            count: 0,
        }
    }

    pub(crate) fn warn(&mut self, reason: impl Into<String>) {
        self.count = self.count.saturating_add(1);
        if self.count <= Self::MAX {
            self.warnings.push(Warning::new(self.object, reason));
        }
    }
}

impl Drop for ObjectWarnings<'_> {
    fn drop(&mut self) {
        if self.count > Self::MAX {
            let more = self.count - Self::MAX;
            self.warnings.push(Warning::new(
                self.object,
                format!("{more} more problems like the above"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_fit_the_kernel_and_keep_the_port() {
        let short = ServicePortName::new("default", "web", "http");
        assert_eq!(short.comment(), "default/web:http");
        assert_eq!(short.service_comment(), "default/web");

        let huge = ServicePortName::new("default", "x".repeat(5000), "http");
        let comment = huge.comment();
        assert_eq!(comment.len(), IPSET_MAX_COMMENT_SIZE);
        assert!(comment.starts_with("default/xxx"));
        assert!(comment.ends_with("x:http"));
        assert_eq!(huge.service_comment().len(), IPSET_MAX_COMMENT_SIZE);

        // Cut on a character boundary: 'é' is two bytes, and 255 - 5
        // (":http") - 10 ("kube-ipvs/") = 240 bytes hold 120 of them; with
        // a one-byte longer namespace only 119 fit, and a byte stays free.
        let unicode = ServicePortName::new("kube-ipvs", "é".repeat(3000), "http");
        assert_eq!(
            unicode.comment(),
            format!("kube-ipvs/{}:http", "é".repeat(120))
        );
        let odd = ServicePortName::new("kube-ipvs1", "é".repeat(3000), "http");
        let comment = odd.comment();
        assert_eq!(comment, format!("kube-ipvs1/{}:http", "é".repeat(119)));
        assert_eq!(comment.len(), 254);

        // Exactly at the limit: nothing is cut.
        let base = "n".repeat(250);
        assert_eq!(fit_comment(&base, ":http"), format!("{base}:http"));
        // A suffix alone over the limit is cut too.
        assert_eq!(fit_comment("ns/name", &"p".repeat(300)).len(), 255);
    }

    #[test]
    fn names_are_checked_like_the_api_server_does() {
        assert_eq!(dns_label_problem("web-1"), None);
        assert_eq!(dns_label_problem(&"a".repeat(63)), None);
        assert!(dns_label_problem(&"a".repeat(64)).is_some());
        assert!(dns_label_problem("").is_some());
        assert!(dns_label_problem("Web").is_some());
        assert!(dns_label_problem("web-").is_some());
        assert!(dns_label_problem("we.b").is_some());
        assert_eq!(port_name_problem("http"), None);
        assert_eq!(port_name_problem("port-name-15chr"), None);
        assert!(port_name_problem("port-name-16char").is_some());
        assert!(port_name_problem("a--b").is_some());
        assert!(port_name_problem("123").is_some());
    }

    #[test]
    fn one_object_gives_at_most_ten_warnings_and_a_count() {
        let mut warnings = Vec::new();
        {
            let mut sink = ObjectWarnings::new("Service default/bad", &mut warnings);
            for i in 0..25 {
                sink.warn(format!("problem {i}"));
            }
        }
        assert_eq!(warnings.len(), 11);
        assert_eq!(warnings[9].reason, "problem 9");
        assert_eq!(warnings[10].reason, "15 more problems like the above");
    }
}
