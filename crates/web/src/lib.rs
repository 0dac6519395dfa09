//! Tether's web console: plain HTML, CSS and ES modules, embedded in the
//! binary and served by the platform. No front-end build step.
//!
//! [`router`] serves the page at `/` (and `/ui/`) and its assets under
//! `/ui/...`. Every answer carries a strict Content-Security-Policy (scripts
//! and styles from this origin only: no inline script or style), `nosniff`,
//! no referrer, no framing; assets are revalidated on each use through a
//! strong `ETag` (the page has no fingerprinted file names, so a new
//! platform version is picked up at once while an unchanged file costs a
//! `304`).
//!
//! The page talks to the platform's management API (`/api/v1/...`) and the
//! broker's session API (`/api/v1/sessions...`) on the same origin;
//! `docs/web.md` lists the routes it uses.
//!
//! ```
//! let app: axum::Router = web::router();
//! # let _ = app;
//! ```

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Header the page sends on every API call.
pub const PAGE_HEADER: &str = "x-tether-web";

/// The Content-Security-Policy of every answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `Cache-Control` of every asset: always revalidate (cheap with the ETag).
pub const CACHE_CONTROL: &str = "no-cache";

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Path under `/ui/` (`index.html` is also served at `/`).
    pub path: &'static str,
    /// Content-Type.
    pub content_type: &'static str,
    /// The bytes.
    pub body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";

macro_rules! asset {
    ($path:literal, $ct:expr) => {
        Asset {
            path: $path,
            content_type: $ct,
            body: include_bytes!(concat!("../assets/", $path)),
        }
    };
}

/// Every file the page is made of.
pub const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("format.js", JS),
    asset!("state.js", JS),
    asset!("pages/login.js", JS),
    asset!("pages/devices.js", JS),
    asset!("pages/device.js", JS),
    asset!("pages/session.js", JS),
    asset!("pages/sessions.js", JS),
    asset!("pages/admin.js", JS),
];

/// The asset at `path` (relative to `/ui/`), if any.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The routes of the web console, to merge into the platform's router:
/// `GET /`, `GET /ui`, `GET /ui/` (the page) and `GET /ui/{*path}` (assets;
/// unknown paths answer 404). HEAD is answered too.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(index))
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/{*path}", get(file))
}

/// Middleware for the platform's whole router: on answers to the page's
/// own API calls (marked with [`PAGE_HEADER`]) it removes
/// `WWW-Authenticate`, so that a 401 (wrong password, expired session)
/// reaches the page's script instead of making the browser open its own
/// password dialog (and hold the request until it is dismissed). Other
/// clients (scripts with HTTP basic) are untouched.
///
/// ```
/// let app: axum::Router = web::router()
///     .layer(axum::middleware::from_fn(web::no_basic_challenge));
/// # let _ = app;
/// ```
pub async fn no_basic_challenge(req: Request, next: Next) -> Response {
    let from_page = req.headers().contains_key(PAGE_HEADER);
    let mut resp = next.run(req).await;
    if from_page {
        resp.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
    resp
}

async fn index(headers: HeaderMap) -> Response {
    serve(asset("index.html"), &headers)
}

async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(asset(&path), &headers)
}

/// A strong ETag: FNV-1a 64 of the body (computed per request: the files
/// are small and this keeps the table `const`).
fn etag(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("\"{h:016x}-{}\"", body.len())
}

fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
}

fn serve(asset: Option<&'static Asset>, req: &HeaderMap) -> Response {
    let Some(asset) = asset else {
        let mut r = (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "not found",
        )
            .into_response();
        security_headers(r.headers_mut());
        return r;
    };
    let tag = etag(asset.body);
    let matches = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut r = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let h = r.headers_mut();
    security_headers(h);
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_listed_once_and_non_empty() {
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(!a.body.is_empty(), "{} is empty", a.path);
            assert!(
                ASSETS[i + 1..].iter().all(|b| b.path != a.path),
                "{} listed twice",
                a.path
            );
        }
    }

    #[test]
    fn no_inline_script_or_style_in_html() {
        let html = std::str::from_utf8(asset("index.html").unwrap().body).unwrap();
        for bad in [
            "<script>",
            "style=",
            "<style",
            "onclick",
            "onload",
            "javascript:",
        ] {
            assert!(!html.contains(bad), "index.html contains {bad}");
        }
        assert!(html.contains(r#"<script type="module" src="/ui/app.js"></script>"#));
    }

    #[test]
    fn modules_do_not_use_inner_html_or_eval() {
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let text = std::str::from_utf8(a.body).unwrap();
            for bad in [
                "innerHTML",
                "outerHTML",
                "eval(",
                "new Function",
                "document.write",
            ] {
                assert!(!text.contains(bad), "{} uses {bad}", a.path);
            }
        }
    }

    #[test]
    fn etag_changes_with_content() {
        assert_ne!(etag(b"a"), etag(b"b"));
        assert_eq!(etag(b"abc"), etag(b"abc"));
    }
}
