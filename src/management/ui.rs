//! The management web UI's static files (`src/management/ui/`), embedded in
//! the binary with `include_bytes!` so nothing is read at run time: the page
//! RabbitMQ's management plugin serves at `/`, which talks to `/api/...` like
//! RabbitMQ's. This module owns which paths are UI paths (`/`,
//! `/index.html`, `/js/…`, `/css/…`; every other non-API path stays
//! `warren ctl`'s), their content types and caching: `Cache-Control:
//! no-cache` with an `ETag`, so a browser revalidates each file and gets a
//! 304 while it is unchanged, and a new binary's files are seen at once.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};
use std::sync::OnceLock;

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// An embedded file: its URL path, its file under `ui/`, its type.
macro_rules! asset {
    ($path:literal, $file:literal, $kind:expr) => {
        Asset {
            path: $path,
            content_type: $kind,
            body: include_bytes!($file),
        }
    };
}

static ASSETS: &[Asset] = &[
    asset!("/index.html", "ui/index.html", HTML),
    asset!("/js/app.js", "ui/js/app.js", JS),
    asset!("/js/pages.js", "ui/js/pages.js", JS),
    asset!("/js/admin.js", "ui/js/admin.js", JS),
    asset!("/js/uPlot.iife.min.js", "ui/js/uPlot.iife.min.js", JS),
    asset!("/css/main.css", "ui/css/main.css", CSS),
    asset!("/css/uPlot.min.css", "ui/css/uPlot.min.css", CSS),
];

/// The page may load its own scripts and styles and call its own origin,
/// nothing else; uPlot sizes its elements through inline styles.
const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
     object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Whether `path` is the UI's (any method): `/`, `/index.html`, or under
/// `/js/` or `/css/`. No `warren ctl` request uses these paths.
pub fn is_ui_path(path: &str) -> bool {
    path == "/" || path == "/index.html" || path.starts_with("/js/") || path.starts_with("/css/")
}

/// The answer to a request for a UI path: the file (GET, HEAD), 304 when
/// `If-None-Match` names its current ETag, 404 for an unknown file, 405
/// for other methods.
pub fn respond(method: &Method, path: &str, headers: &HeaderMap) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
        r.headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = if path == "/" { "/index.html" } else { path };
    let Some((index, asset)) = ASSETS.iter().enumerate().find(|(_, a)| a.path == path) else {
        return plain(StatusCode::NOT_FOUND, "Not Found\n");
    };
    let etag = &etags()[index];
    let fresh = headers
        .get(hyper::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut r = if fresh {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(Full::new(Bytes::from_static(asset.body)));
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        r
    };
    let h = r.headers_mut();
    h.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(hyper::header::ETAG, v);
    }
    h.insert(
        hyper::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if asset.content_type == HTML {
        h.insert(
            hyper::header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(
            hyper::header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        );
    }
    r
}

/// Each asset's strong ETag (CRC-32C of its bytes and length), computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{:08x}-{:x}\"", crc32c::crc32c(a.body), a.body.len()))
            .collect()
    })
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, if_none_match: Option<&str>) -> Response<Full<Bytes>> {
        let mut headers = HeaderMap::new();
        if let Some(t) = if_none_match {
            headers.insert(
                hyper::header::IF_NONE_MATCH,
                HeaderValue::from_str(t).unwrap(),
            );
        }
        respond(&Method::GET, path, &headers)
    }

    fn header<'a>(r: &'a Response<Full<Bytes>>, name: &str) -> &'a str {
        r.headers()
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or(""))
    }

    #[test]
    fn ui_paths_leave_ctl_paths_alone() {
        for p in ["/", "/index.html", "/js/app.js", "/css/main.css", "/js/x"] {
            assert!(is_ui_path(p), "{p}");
        }
        for p in [
            "/queues",
            "/set_policy/x",
            "/reload_tls",
            "/api/overview",
            "/jsx",
        ] {
            assert!(!is_ui_path(p), "{p}");
        }
        for name in crate::admin::LISTINGS {
            assert!(!is_ui_path(&format!("/{name}")), "{name}");
        }
    }

    #[test]
    fn files_come_with_type_caching_and_etag() {
        let r = get("/", None);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type"), HTML);
        assert_eq!(header(&r, "cache-control"), "no-cache");
        assert!(header(&r, "content-security-policy").contains("default-src 'self'"));
        let etag = header(&r, "etag").to_string();
        assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
        assert_eq!(get("/index.html", None).headers()["etag"], etag.as_str());
        let again = get("/", Some(&etag));
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&again, "etag"), etag);
        assert_eq!(get("/", Some("\"other\"")).status(), StatusCode::OK);
        let js = get("/js/uPlot.iife.min.js", None);
        assert_eq!(header(&js, "content-type"), JS);
        assert_eq!(header(&get("/css/main.css", None), "content-type"), CSS);
        assert_eq!(get("/js/missing.js", None).status(), StatusCode::NOT_FOUND);
        let post = respond(&Method::POST, "/", &HeaderMap::new());
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn index_names_every_script_and_stylesheet_it_loads() {
        let index = std::str::from_utf8(ASSETS[0].body).unwrap();
        for a in &ASSETS[1..] {
            assert!(index.contains(&format!("\"{}\"", a.path)), "{}", a.path);
        }
        let total: usize = ASSETS.iter().map(|a| a.body.len()).sum();
        assert!(total < 400 * 1024, "the UI's files total {total} bytes");
    }
}
