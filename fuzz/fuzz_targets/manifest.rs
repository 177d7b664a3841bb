#![no_main]
// A manifest file of the offline source (`--manifests`), as text.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let (objects, errors) = kipvs_cluster::parse_manifest("fuzz.yaml", text);
        for error in &errors {
            let _ = error.to_string();
        }
        std::hint::black_box((objects.len(), errors.len()));
    }
});
