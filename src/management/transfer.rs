//! The definitions endpoints: `GET /api/definitions` (every vhost) and
//! `GET /api/definitions/{vhost}` export, `POST` to the same paths imports
//! (a JSON body, or a `multipart/form-data` upload's `file` field, as the
//! RabbitMQ UI sends it); administrators only, as RabbitMQ. The same
//! export and import serve `warren ctl export_definitions` /
//! `import_definitions` (the plain-text side: `GET /export_definitions`,
//! `POST /import_definitions`, loopback peers only). One import runs at a
//! time (another is answered 503); a file is at most 64 MiB.

use super::access::{bad_request, busy, on_shard0, read_body, refused};
use super::auth::User;
use super::definitions::{export, export_vhost, Snapshot};
use super::import::{apply, plan};
use super::{json_response, text, Context};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Largest definitions file taken (RabbitMQ's default is 20 MB; Warren's
/// export of 100 k queues is about 12 MB).
pub const MAX_FILE: usize = 64 << 20;

/// How long an import may take before the client is answered 503 (the
/// import goes on).
const IMPORT_TIMEOUT: Duration = Duration::from_secs(600);

/// Whether an import is running.
static IMPORTING: AtomicBool = AtomicBool::new(false);

/// `/api/definitions[/{vhost}]` (also RabbitMQ's old name
/// `/api/all-configuration`): Some(vhost scope).
pub fn route(segments: &[String]) -> Option<Option<String>> {
    match segments {
        [d] if d == "definitions" || d == "all-configuration" => Some(None),
        [d, v] if d == "definitions" => Some(Some(v.clone())),
        _ => None,
    }
}

/// Serves `/api/definitions[/{vhost}]` for a logged-in user.
pub async fn serve(
    ctx: &Context,
    user: &User,
    scope: Option<String>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    if !user.tags.iter().any(|t| t == "administrator") {
        return refused("Not administrator user");
    }
    let method = req.method().clone();
    if method == Method::GET || method == Method::HEAD {
        return match export_json(ctx, scope.clone()).await {
            Some(Ok(v)) => {
                let mut r = json_response(StatusCode::OK, &v);
                if let Some(name) = download_name(req.uri().query().unwrap_or("")) {
                    if let Ok(h) = hyper::header::HeaderValue::from_str(&format!(
                        "attachment; filename={name}"
                    )) {
                        r.headers_mut()
                            .insert(hyper::header::CONTENT_DISPOSITION, h);
                    }
                }
                r
            }
            // RabbitMQ answers an export of a missing vhost 400.
            Some(Err(())) => bad_request("vhost_not_found"),
            None => busy(),
        };
    }
    if method != Method::POST {
        return json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "Method Not Allowed", "reason": format!("{method} is not allowed here")}),
        );
    }
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = match read_body(req, MAX_FILE).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let file = match multipart_file(&content_type, &body) {
        Some(Ok(f)) => f,
        Some(Err(why)) => return bad_request(why),
        None => body,
    };
    match import(ctx, &file, scope).await {
        Ok(_) => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
        Err((StatusCode::NOT_FOUND, why)) => json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "not_found", "reason": why}),
        ),
        Err((StatusCode::SERVICE_UNAVAILABLE, _)) => busy(),
        Err((StatusCode::BAD_REQUEST, why)) => bad_request(&why),
        Err((status, why)) => json_response(
            status,
            &json!({"error": "internal_server_error", "reason": why}),
        ),
    }
}

/// The export (Err: no such vhost), rendered on this thread from a copy.
async fn export_json(ctx: &Context, scope: Option<String>) -> Option<Result<Value, ()>> {
    let started = Instant::now();
    let snap = on_shard0(ctx, super::SHARD_TIMEOUT, |s| async move {
        Snapshot::of(&s.meta.borrow())
    })
    .await?;
    let copied = started.elapsed();
    let version = env!("CARGO_PKG_VERSION");
    let out = match scope {
        None => Ok(export(&snap, version)),
        Some(v) if snap.has_vhost(&v) => Ok(export_vhost(&snap, &v, version)),
        Some(_) => Err(()),
    };
    tracing::debug!(
        queues = snap.queues.len(),
        "definitions export: copied in {copied:?}, rendered in {:?}",
        started.elapsed() - copied
    );
    Some(out)
}

/// Imports a file: parsed here, checked and applied on shard 0. Ok: the
/// number of changes; Err: the HTTP status and why.
async fn import(
    ctx: &Context,
    file: &[u8],
    scope: Option<String>,
) -> Result<usize, (StatusCode, String)> {
    let bom = file.strip_prefix("\u{feff}".as_bytes()).unwrap_or(file);
    let doc: Value = if bom.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(bom)
            .map_err(|_| (StatusCode::BAD_REQUEST, "failed_to_parse_json".to_string()))?
    };
    if IMPORTING.swap(true, Ordering::AcqRel) {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "an import is running".into(),
        ));
    }
    let result = checked_import(ctx, doc, scope).await;
    IMPORTING.store(false, Ordering::Release);
    result
}

/// The snapshot is taken on shard 0, the file checked against it here
/// (shard 0 goes on serving meanwhile), then the plan carried out on
/// shard 0.
async fn checked_import(
    ctx: &Context,
    doc: Value,
    scope: Option<String>,
) -> Result<usize, (StatusCode, String)> {
    let busy = || (StatusCode::SERVICE_UNAVAILABLE, String::new());
    let (snap, shards) = on_shard0(ctx, super::SHARD_TIMEOUT, |s| async move {
        (Snapshot::of(&s.meta.borrow()), s.count)
    })
    .await
    .ok_or_else(busy)?;
    if let Some(v) = &scope {
        if !snap.has_vhost(v) {
            return Err((StatusCode::NOT_FOUND, "vhost_not_found".to_string()));
        }
    }
    let plan = plan(&doc, &snap, scope.as_deref(), shards).map_err(|why| {
        tracing::warn!("definitions import refused, nothing changed: {why}");
        (StatusCode::BAD_REQUEST, why)
    })?;
    drop((doc, snap));
    let n = on_shard0(ctx, IMPORT_TIMEOUT, move |shard| async move {
        apply(&shard, plan).await
    })
    .await
    .ok_or_else(busy)?
    .map_err(|why| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("import stopped: {why}"),
        )
    })?;
    tracing::info!("definitions imported: {n} change(s)");
    Ok(n)
}

/// The `download` query parameter (the UI's "download" link), if it is a
/// plain file name.
fn download_name(query: &str) -> Option<String> {
    let q = super::listing::parse_query(query);
    let name = super::listing::param(&q, "download")?;
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        .then(|| name.to_string())
}

/// The `file` field of a `multipart/form-data` body; None when the body is
/// not multipart.
fn multipart_file(content_type: &str, body: &Bytes) -> Option<Result<Bytes, &'static str>> {
    if !content_type.starts_with("multipart/form-data") {
        return None;
    }
    let Some(boundary) = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
    else {
        return Some(Err("multipart body without a boundary"));
    };
    let delimiter = format!("--{boundary}");
    let mut rest = &body[..];
    while let Some(start) = find(rest, delimiter.as_bytes()) {
        rest = &rest[start + delimiter.len()..];
        let Some(head_end) = find(rest, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&rest[..head_end]).to_ascii_lowercase();
        let content = &rest[head_end + 4..];
        let end = find(content, format!("\r\n{delimiter}").as_bytes()).unwrap_or(content.len());
        if head.contains("name=\"file\"") {
            let offset = body.len() - content.len();
            return Some(Ok(body.slice(offset..offset + end)));
        }
        rest = &content[end..];
    }
    Some(Err("no 'file' field in the upload"))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `warren ctl export_definitions` / `import_definitions`: the plain-text
/// requests (loopback peers only, checked by the caller).
pub fn is_ctl_path(path: &str) -> bool {
    path == "/export_definitions" || path == "/import_definitions"
}

pub async fn ctl(
    ctx: &Context,
    req: hyper::Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    match (req.method().clone(), req.uri().path()) {
        (Method::GET, "/export_definitions") => match export_json(ctx, None).await {
            Some(Ok(v)) => text(StatusCode::OK, format!("{v}\n")),
            _ => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the broker is busy; try again\n".into(),
            ),
        },
        (Method::POST, "/import_definitions") => {
            let body = match read_body(req, MAX_FILE).await {
                Ok(b) => b,
                Err(_) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("Error:\nthe file is larger than {MAX_FILE} bytes\n"),
                    )
                }
            };
            match import(ctx, &body, None).await {
                Ok(n) => text(
                    StatusCode::OK,
                    format!("Imported definitions: {n} change(s)\n"),
                ),
                Err((status, why)) => text(status, format!("Error:\n{why}\n")),
            }
        }
        _ => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "use GET /export_definitions or POST /import_definitions\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_give_their_file_field() {
        let body = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"redirect\"\r\n\r\n/x\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.json\"\r\nContent-Type: application/json\r\n\r\n{\"users\":[]}\r\n--XyZ--\r\n",
        );
        let f = multipart_file("multipart/form-data; boundary=XyZ", &body);
        assert_eq!(f, Some(Ok(Bytes::from_static(b"{\"users\":[]}"))));
        assert_eq!(multipart_file("application/json", &body), None);
        assert!(matches!(
            multipart_file("multipart/form-data; boundary=Q", &body),
            Some(Err(_))
        ));
    }

    #[test]
    fn routes() {
        let s = |p: &[&str]| p.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(route(&s(&["definitions"])), Some(None));
        assert_eq!(route(&s(&["definitions", "v"])), Some(Some("v".into())));
        assert_eq!(route(&s(&["definitions", "v", "x"])), None);
        assert_eq!(
            download_name("download=defs.json"),
            Some("defs.json".into())
        );
        assert_eq!(download_name("download=a%0Db"), None);
    }
}
