//! kube-proxy's choice of objects: Services and EndpointSlices carrying either label below belong to
//! another proxy (`service-proxy-name`) or to a headless Service (`headless`, set on EndpointSlices
//! by the EndpointSlice controller) and are ignored. Mirrors `cmd/kube-proxy/app/server.go`, which
//! builds its informers with both `DoesNotExist` requirements.

use std::collections::BTreeMap;

/// Set on Services handled by an alternative proxy.
pub const LABEL_SERVICE_PROXY_NAME: &str = "service.kubernetes.io/service-proxy-name";
/// Set on the EndpointSlices (and sometimes Services) of headless Services.
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// The server-side label selector equivalent to [`is_selected`].
pub const LABEL_SELECTOR: &str =
    "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless";

/// True when an object with these labels is one kube-proxy would watch: neither label is present,
/// whatever its value (a `!key` selector matches on key existence only).
pub fn is_selected(labels: Option<&BTreeMap<String, String>>) -> bool {
    labels.is_none_or(|labels| {
        !labels.contains_key(LABEL_SERVICE_PROXY_NAME) && !labels.contains_key(LABEL_HEADLESS)
    })
}

/// The field selector that narrows a Node watch to one node.
pub fn node_field_selector(node_name: &str) -> String {
    format!("metadata.name={node_name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_select_on_key_existence() {
        assert!(is_selected(None));
        let mut labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        assert!(is_selected(Some(&labels)));
        labels.insert(LABEL_HEADLESS.to_string(), String::new());
        assert!(!is_selected(Some(&labels)));
        labels.remove(LABEL_HEADLESS);
        labels.insert(LABEL_SERVICE_PROXY_NAME.to_string(), "other".to_string());
        assert!(!is_selected(Some(&labels)));
    }
}
