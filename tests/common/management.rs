//! The management HTTP API: one request with basic auth, its status,
//! headers and JSON body.

use super::*;

/// A management API response.
pub struct ApiResponse {
    pub status: u16,
    /// The response head, lower-cased.
    pub head: String,
    pub body: serde_json::Value,
}

/// `method path` on the broker's management port, as `user:password`
/// (None: no Authorization header).
pub fn api(b: &Broker, method: &str, path: &str, auth: Option<&str>) -> ApiResponse {
    api_send(b, method, path, auth, None, &[])
}

/// `method path` with a JSON `body` and extra `headers`; an answer without
/// a body (201, 204) reads as `null`.
pub fn api_send(
    b: &Broker,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&serde_json::Value>,
    headers: &[(&str, &str)],
) -> ApiResponse {
    use base64::Engine;
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: localhost\r\n");
    if let Some(auth) = auth {
        let token = base64::engine::general_purpose::STANDARD.encode(auth);
        request.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    if !body.is_empty() {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let response = admin_request(&admin_addr(b), &request);
    parse_response(method, path, &response)
}

/// An HTTP response's status, head and JSON body (an empty body is
/// `Value::Null`: 201 and 204 have none).
fn parse_response(method: &str, path: &str, response: &str) -> ApiResponse {
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {response:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let body = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {body:?}"))
    };
    ApiResponse {
        status,
        head: head.to_lowercase(),
        body,
    }
}

/// GET `path` as guest; panics unless the answer is 200.
pub fn api_get(b: &Broker, path: &str) -> serde_json::Value {
    let r = api(b, "GET", path, Some("guest:guest"));
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.body
}

/// `method path` with a body (`content_type`) as `user:password`.
pub fn api_body(
    b: &Broker,
    method: &str,
    path: &str,
    auth: &str,
    content_type: &str,
    body: &[u8],
) -> ApiResponse {
    use base64::Engine;
    use std::io::{Read, Write};
    let token = base64::engine::general_purpose::STANDARD.encode(auth);
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Basic {token}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut s =
        std::net::TcpStream::connect(admin_addr(b)).expect("connect to the management port");
    s.set_read_timeout(Some(Duration::from_secs(120))).ok();
    s.write_all(head.as_bytes()).expect("send head");
    s.write_all(body).expect("send body");
    let mut response = String::new();
    s.read_to_string(&mut response).expect("read response");
    parse_response(method, path, &response)
}

/// [`api_body`] with a JSON body, as guest.
pub fn api_json(b: &Broker, method: &str, path: &str, body: &serde_json::Value) -> ApiResponse {
    api_body(
        b,
        method,
        path,
        "guest:guest",
        "application/json",
        body.to_string().as_bytes(),
    )
}
