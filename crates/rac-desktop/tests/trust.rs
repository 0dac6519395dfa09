//! Trust decisions against a real TLS server with a self-signed
//! certificate: the probe sees the fingerprint, the CLI refuses with a
//! message telling how to pin, a pinned entry is used.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rac_desktop::{Decision, Settings, TrustedPlatform, cli_trust, decide};
use tokio::net::TcpListener;

async fn tls_server() -> (u16, net::SelfSigned) {
    let cert = net::SelfSigned::generate(&["localhost", "127.0.0.1"]).unwrap();
    let acceptor = tokio_rustls_acceptor(&cert);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let a = acceptor.clone();
            tokio::spawn(async move {
                let _ = net::tls::accept(&a, s, Duration::from_secs(5)).await;
            });
        }
    });
    (port, cert)
}

fn tokio_rustls_acceptor(cert: &net::SelfSigned) -> tokio_rustls::TlsAcceptor {
    tokio_rustls::TlsAcceptor::from(cert.server_config(&[net::tls::ALPN_HTTP1]).unwrap())
}

#[tokio::test]
async fn self_signed_platform_is_asked_with_its_fingerprint() {
    let (port, cert) = tls_server().await;
    let url = url::Url::parse(&format!("https://127.0.0.1:{port}")).unwrap();
    let t = Duration::from_secs(5);
    let Decision::Ask(u) = decide(&Settings::default(), &url, t).await.unwrap() else {
        panic!("an unknown platform must be asked about")
    };
    assert_eq!(u.fingerprint, Some(cert.fingerprint()));
    assert!(!u.ca_valid);
    assert!(u.question().contains(&cert.fingerprint().to_string()));
    assert_eq!(u.entry().pin_sha256, vec![cert.fingerprint().to_string()]);

    let refusal = cli_trust(&Settings::default(), &url, t).await.unwrap_err();
    assert!(refusal.contains("--pin-sha256"), "{refusal}");
    assert!(
        refusal.contains(&cert.fingerprint().to_string()),
        "{refusal}"
    );
    assert!(refusal.contains("[[platform]]"), "{refusal}");

    let pinned = Settings {
        platforms: vec![u.entry()],
        ..Settings::default()
    };
    match cli_trust(&pinned, &url, t).await.unwrap() {
        net::Trust::Pinned(p) => assert_eq!(p, vec![cert.fingerprint()]),
        other => panic!("expected pinned trust, got {other:?}"),
    }
    // An entry without pins means CA validation (which this cert fails later).
    let ca = Settings {
        platforms: vec![TrustedPlatform {
            url: url.to_string(),
            pin_sha256: vec![],
        }],
        ..Settings::default()
    };
    assert!(matches!(
        cli_trust(&ca, &url, t).await.unwrap(),
        net::Trust::WebPki { .. }
    ));
}

#[tokio::test]
async fn unreachable_platform_is_an_error_not_a_hang() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let url = url::Url::parse(&format!("https://127.0.0.1:{port}")).unwrap();
    let err = decide(&Settings::default(), &url, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn cli_uses_ca_validation_for_an_unknown_plain_http_platform() {
    let url = url::Url::parse("http://127.0.0.1:9").unwrap();
    let t = cli_trust(&Settings::default(), &url, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(matches!(t, net::Trust::WebPki { .. }));
}

#[tokio::test]
async fn cli_leaves_an_unreachable_platform_to_the_run() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let url = url::Url::parse(&format!("https://127.0.0.1:{port}")).unwrap();
    let t = cli_trust(&Settings::default(), &url, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(matches!(t, net::Trust::WebPki { .. }));
}
