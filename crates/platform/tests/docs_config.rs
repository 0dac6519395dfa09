//! Every TOML sample in the platform docs parses and validates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn toml_samples_in_docs_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let mut found = 0;
    for doc in ["platform.md", "operator-guide.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("```toml\n") {
            let body = &rest[start + 8..];
            let end = body.find("```").unwrap();
            let sample = &body[..end];
            let raw = platform::RawConfig::parse(sample)
                .unwrap_or_else(|e| panic!("{doc}: {e}\n{sample}"));
            raw.validate()
                .unwrap_or_else(|e| panic!("{doc}: {e}\n{sample}"));
            found += 1;
            rest = &body[end + 3..];
        }
    }
    assert!(found >= 2, "found {found} samples");
}
