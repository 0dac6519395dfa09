//! Every sample config shipped in docs/examples/cxserver parses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn shipped_samples_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/cxserver");
    let mut found = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            // app-key-file must exist to validate: point it at a temporary key file.
            let tmp = tempfile::tempdir().unwrap();
            std::fs::write(tmp.path().join("cx-app-key.txt"), "k\n").unwrap();
            let c = cxserver::Config::from_toml(&text, tmp.path())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                c.edge.auth_request_timeout,
                cxserver::DEFAULT_AUTH_REQUEST_TIMEOUT
            );
            assert_eq!(c.platform.app_key.expose(), "k");
            assert!(c.edge.compression && !c.edge.compression_context_takeover);
            // The commented-out public-url example is valid too.
            if text.contains("# public-url = ") {
                let on = text.replace("# public-url = ", "public-url = ");
                let c = cxserver::Config::from_toml(&on, tmp.path())
                    .unwrap_or_else(|e| panic!("{} (public-url): {e}", path.display()));
                assert!(c.edge.public_origin().is_some());
            }
            found += 1;
        }
    }
    assert!(found >= 1, "no sample config found in {}", dir.display());
}
