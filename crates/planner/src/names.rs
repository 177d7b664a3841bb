//! How kube-proxy names a service port, and what a skipped object reports.

use std::fmt;

/// One Kubernetes service port: `namespace/name:portname`, or
/// `namespace/name` when the port is unnamed (kube-proxy's
/// `ServicePortName.String()`). This is also the comment of the service's
/// ipset entries, which is how [`ServicePortName::from_comment`] finds the
/// owner of kernel state again.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServicePortName {
    pub namespace: String,
    pub name: String,
    /// The service port's `name`; empty for an unnamed port.
    pub port: String,
}

impl ServicePortName {
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        port: impl Into<String>,
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
