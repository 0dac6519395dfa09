//! The router over plain HTTP: content types, security and cache headers,
//! conditional requests, unknown paths, the no-challenge middleware.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use tower::ServiceExt as _;

async fn send(app: &Router, req: Request<Body>) -> axum::response::Response {
    app.clone().oneshot(req).await.unwrap()
}

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn page_and_assets_with_types_and_headers() {
    let app: Router = web::router();
    for (path, ct) in [
        ("/", "text/html; charset=utf-8"),
        ("/ui", "text/html; charset=utf-8"),
        ("/ui/", "text/html; charset=utf-8"),
        ("/ui/index.html", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/pages/admin.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ] {
        let r = send(&app, get_req(path)).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers();
        assert_eq!(h[header::CONTENT_TYPE], ct, "{path}");
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            web::CONTENT_SECURITY_POLICY
        );
        assert!(!web::CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        assert!(h.contains_key(header::ETAG), "{path}");
    }
    // HEAD is answered without a body.
    let r = send(
        &app,
        Request::head("/ui/app.js").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    assert!(body.is_empty());
}

#[tokio::test]
async fn etag_revalidation_answers_304() {
    let app: Router = web::router();
    let r = send(&app, get_req("/ui/style.css")).await;
    let tag = r.headers()[header::ETAG].clone();
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    assert_eq!(&body[..], web::asset("style.css").unwrap().body);
    let r = send(
        &app,
        Request::get("/ui/style.css")
            .header(header::IF_NONE_MATCH, tag.clone())
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()[header::ETAG], tag);
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    assert!(body.is_empty());
    // Another file's tag does not match.
    let r = send(
        &app,
        Request::get("/ui/app.js")
            .header(header::IF_NONE_MATCH, tag)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_paths_are_404_and_traversal_finds_nothing() {
    let app: Router = web::router();
    for path in [
        "/ui/nope.js",
        "/ui/../Cargo.toml",
        "/ui/%2e%2e/src/lib.rs",
        "/ui/pages/",
        "/ui/pages",
    ] {
        let r = send(&app, get_req(path)).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    let r = send(
        &app,
        Request::post("/ui/app.js").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn mounts_beside_other_routes_with_any_state() {
    #[derive(Clone)]
    struct St;
    let app: Router = Router::new()
        .route("/api/v1/me", get(|| async { "me" }))
        .merge(web::router::<St>())
        .with_state(St);
    assert_eq!(
        send(&app, get_req("/api/v1/me")).await.status(),
        StatusCode::OK
    );
    assert_eq!(send(&app, get_req("/")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn basic_challenge_removed_for_the_page_only() {
    let app: Router = Router::new()
        .route(
            "/api/v1/login",
            get(|| async {
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Basic realm=\"tether\"")],
                )
            }),
        )
        .layer(axum::middleware::from_fn(web::no_basic_challenge));
    let r = send(&app, get_req("/api/v1/login")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
    let r = send(
        &app,
        Request::get("/api/v1/login")
            .header(web::PAGE_HEADER, "1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!r.headers().contains_key(header::WWW_AUTHENTICATE));
}

/// The platform's whole router (`platform::remote_access::app`): a wrong
/// password at `/api/v1/login` from the page carries no Basic challenge (the
/// browser would open its own dialog and hold the request); from a script
/// it still does.
#[tokio::test]
async fn platform_app_has_no_challenge_for_the_page_at_login() {
    let dir = tempfile::tempdir().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let prepared = platform::prepare(
        platform::Config::with_data_dir(dir.path()),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let p = prepared.platform.clone();
    let broker = platform::remote_access::start_broker(
        &p,
        "https://127.0.0.1:1".parse().unwrap(),
        shutdown.child_token(),
    )
    .unwrap();
    let app = platform::remote_access::app(&p, &broker);
    let login = |page: bool| {
        let mut r = Request::post("/api/v1/login").header(header::CONTENT_TYPE, "application/json");
        if page {
            r = r.header(web::PAGE_HEADER, "1");
        }
        r.body(Body::from(
            r#"{"username":"nobody","password":"wrong-password"}"#,
        ))
        .unwrap()
    };
    let r = send(&app, login(true)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
    let r = send(&app, login(false)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(header::WWW_AUTHENTICATE).is_some());
    shutdown.cancel();
}
