//! TLS trust modes against a real loopback server with a generated
//! self-signed certificate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use net::tls::{self, ALPN_HTTP1};
use net::{Fingerprint, NetError, SelfSigned, TlsError, Trust};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_secs(5);

/// A TLS echo server for one connection; returns its address.
async fn echo_server(cert: &SelfSigned) -> std::net::SocketAddr {
    let config = cert.server_config(&[ALPN_HTTP1]).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = tls::accept(&acceptor, tcp, T).await else {
                    return;
                };
                let mut buf = [0u8; 64];
                while let Ok(n) = tls.read(&mut buf).await {
                    if n == 0 || tls.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn client(
    addr: std::net::SocketAddr,
    trust: &Trust,
    name: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, NetError> {
    let config = tls::client_config(trust, &[ALPN_HTTP1])?;
    let tcp = TcpStream::connect(addr).await.unwrap();
    tls::connect(config, name, tcp, T).await
}

async fn assert_echo(stream: &mut tokio_rustls::client::TlsStream<TcpStream>) {
    stream.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
}

#[tokio::test]
async fn pinned_fingerprint_is_accepted_whatever_the_host_name() {
    let cert = SelfSigned::generate(&["device.example", "127.0.0.1"]).unwrap();
    let addr = echo_server(&cert).await;
    let trust = Trust::pinned_from_strs(&[&cert.sha256_fingerprint_hex]).unwrap();
    // Host name not in the certificate: pinning does not check it.
    let mut s = client(addr, &trust, "other.invalid").await.unwrap();
    assert_echo(&mut s).await;
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(ALPN_HTTP1));
}

#[tokio::test]
async fn pinned_with_several_fingerprints_accepts_any_of_them() {
    let cert = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let other = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let addr = echo_server(&cert).await;
    let trust = Trust::Pinned(vec![other.fingerprint(), cert.fingerprint()]);
    let mut s = client(addr, &trust, "127.0.0.1").await.unwrap();
    assert_echo(&mut s).await;
}

#[tokio::test]
async fn wrong_pin_fails_with_a_clear_error() {
    let cert = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let other = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let addr = echo_server(&cert).await;
    let err = client(addr, &Trust::Pinned(vec![other.fingerprint()]), "127.0.0.1")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("TLS handshake with 127.0.0.1 failed: invalid peer certificate: server certificate SHA-256 fingerprint"), "{text}");
    assert!(
        text.contains("does not match the pinned fingerprint"),
        "{text}"
    );
    assert!(
        text.contains(&cert.sha256_fingerprint_hex),
        "names what was presented: {text}"
    );
    assert!(
        text.contains(&other.sha256_fingerprint_hex),
        "names what was pinned: {text}"
    );
}

#[tokio::test]
async fn webpki_rejects_a_self_signed_certificate() {
    let cert = SelfSigned::generate(&["localhost"]).unwrap();
    let addr = echo_server(&cert).await;
    let err = client(addr, &Trust::default(), "localhost")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("invalid peer certificate"), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
}

#[tokio::test]
async fn webpki_with_the_certificate_as_extra_root_accepts_and_checks_the_name() {
    let cert = SelfSigned::generate(&["localhost"]).unwrap();
    let addr = echo_server(&cert).await;
    let trust = Trust::WebPki {
        extra_roots_pem: vec![cert.cert_pem.clone()],
    };
    let mut s = client(addr, &trust, "localhost").await.unwrap();
    assert_echo(&mut s).await;
    let err = client(addr, &trust, "wrong.example").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("certificate not valid for name \"wrong.example\""),
        "{err}"
    );
}

#[tokio::test]
async fn insecure_accepts_any_certificate() {
    let cert = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let addr = echo_server(&cert).await;
    let mut s = client(addr, &Trust::InsecureAllowSelfSigned, "anything.invalid")
        .await
        .unwrap();
    assert_echo(&mut s).await;
}

#[tokio::test]
async fn handshake_deadline_applies_to_a_silent_client() {
    let cert = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(cert.server_config(&[]).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _silent = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let err = tls::accept(&acceptor, tcp, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::Timeout { .. }), "{err}");
}

#[test]
fn pem_round_trip_through_files_and_fingerprint_matches_der() {
    let cert = SelfSigned::generate(&["example.test", "::1"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert.cert_pem).unwrap();
    std::fs::write(&key_path, &cert.key_pem).unwrap();
    let config = tls::server_config_from_files(&cert_path, &key_path, &[ALPN_HTTP1]).unwrap();
    assert_eq!(config.alpn_protocols, vec![ALPN_HTTP1.to_vec()]);

    let chain = tls::certs_from_pem(&cert.cert_pem, "test").unwrap();
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0], cert.der);
    assert_eq!(
        net::fingerprint_sha256(&chain[0]),
        cert.sha256_fingerprint_hex
    );
    let parsed: Fingerprint = cert.sha256_fingerprint_hex.parse().unwrap();
    assert_eq!(parsed, cert.fingerprint());
    assert!(!format!("{cert:?}").contains("PRIVATE KEY"));
}

#[test]
fn bad_inputs_give_errors_that_name_the_problem() {
    let cert = SelfSigned::generate(&["a.test"]).unwrap();
    let other = SelfSigned::generate(&["a.test"]).unwrap();

    let err = tls::server_config_from_pem("", &cert.key_pem, &[]).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("no certificate found in certificate PEM")
    );

    let err = tls::server_config_from_pem(&cert.cert_pem, &cert.cert_pem, &[]).unwrap_err();
    assert!(err.to_string().contains("no private key found"), "{err}");

    let err = tls::server_config_from_pem(&cert.cert_pem, &other.key_pem, &[]).unwrap_err();
    assert!(
        err.to_string().contains("do not form a usable pair"),
        "{err}"
    );

    let missing = std::path::Path::new("/nonexistent/tether/cert.pem");
    let err = tls::server_config_from_files(missing, missing, &[]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("cannot read certificate file /nonexistent/tether/cert.pem"),
        "{text}"
    );

    let err = Trust::pinned_from_strs::<&str>(&[]).unwrap_err();
    assert!(matches!(err, TlsError::NoPins));
    assert!(tls::client_config(&Trust::Pinned(vec![]), &[]).is_err());
    let err = Trust::pinned_from_strs(&["AB:CD"]).unwrap_err();
    assert!(
        err.to_string().contains("invalid SHA-256 fingerprint"),
        "{err}"
    );

    let err = tls::client_config(
        &Trust::WebPki {
            extra_roots_pem: vec!["not pem".into()],
        },
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("extra CA #1"), "{err}");

    assert!(matches!(
        SelfSigned::generate::<&str>(&[]).unwrap_err(),
        TlsError::NoNames
    ));
}

#[test]
fn client_configs_use_the_requested_alpn() {
    for trust in [
        Trust::default(),
        Trust::InsecureAllowSelfSigned,
        Trust::Pinned(vec![Fingerprint([7; 32])]),
    ] {
        let config: Arc<rustls::ClientConfig> = tls::client_config(&trust, &[ALPN_HTTP1]).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}

#[tokio::test]
async fn client_identity_is_presented_when_the_server_asks() {
    use rustls::server::WebPkiClientVerifier;

    let server_cert = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let client_cert = SelfSigned::generate(&["edge-1"]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(client_cert.der.clone()).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), tls::provider())
        .build()
        .unwrap();
    let server_config = rustls::ServerConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server_cert.der.clone()], server_cert.key_der())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let result = tls::accept(&acceptor, tcp, T).await;
            seen.push(result.ok().and_then(|s| {
                s.get_ref()
                    .1
                    .peer_certificates()
                    .map(|c| net::fingerprint_sha256(&c[0]))
            }));
        }
        seen
    });

    let trust = Trust::Pinned(vec![server_cert.fingerprint()]);
    let identity =
        tls::ClientIdentity::from_pem(&client_cert.cert_pem, &client_cert.key_pem).unwrap();
    assert!(!format!("{identity:?}").contains("BEGIN"));
    let with_id = tls::client_config_with_identity(&trust, &[], Some(&identity)).unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut ok = tls::connect(with_id, "127.0.0.1", tcp, T).await.unwrap();
    // TLS 1.3: the server checks the client certificate after the client's
    // handshake completes; a round trip makes sure it was accepted.
    ok.write_all(b"x").await.unwrap();
    ok.flush().await.unwrap();

    // Without an identity the server refuses the handshake.
    let without = tls::client_config(&trust, &[]).unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    if let Ok(mut s) = tls::connect(without, "127.0.0.1", tcp, T).await {
        // TLS 1.3 reports the refusal only on the first read; the server's
        // view below is what the test checks.
        let mut buf = [0u8; 1];
        let _ = s.read(&mut buf).await;
    }
    let seen = server.await.unwrap();
    assert_eq!(
        seen[0].as_deref(),
        Some(client_cert.sha256_fingerprint_hex.as_str())
    );
    assert_eq!(seen[1], None);
}
