//! A small W3C WebDriver client for the web UI test: starts Debian's
//! `chromedriver` on a free port, opens a headless Chromium session with a
//! fresh profile, and speaks WebDriver's JSON over plain HTTP/1.1 on a std
//! `TcpStream` (one request per connection). No crate is needed for the
//! dozen commands the test uses.

use base64::Engine;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Chromium's flags: headless, no sandbox (the test may run as root), and
/// nothing that reaches the network on its own.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1100",
];

/// A WebDriver session in a chromedriver process (both ended on drop).
pub struct Driver {
    driver: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

/// An element reference.
pub struct Element(String);

impl Element {
    pub fn id(&self) -> &str {
        &self.0
    }
}

/// The first `name` on PATH.
pub fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Chromium and chromedriver, or which one is not installed.
pub fn programs() -> Result<(PathBuf, PathBuf), String> {
    let chromium = find_program("chromium")
        .or_else(|| find_program("chromium-browser"))
        .ok_or("no chromium on PATH (apt-get install chromium chromium-driver)")?;
    let chromedriver = find_program("chromedriver")
        .ok_or("no chromedriver on PATH (apt-get install chromium-driver)")?;
    Ok((chromium, chromedriver))
}

impl Driver {
    /// Starts chromedriver and a Chromium session, or says why it cannot.
    pub fn start(chromium: &Path, chromedriver: &Path) -> Result<Driver, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start {}: {e}", chromedriver.display()))?;
        let profile = tempfile::Builder::new()
            .prefix("warren-web-ui-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let mut d = Driver {
            driver,
            base: format!("127.0.0.1:{port}"),
            session: String::new(),
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while d.http("GET", "/status", None).map(|v| v["ready"] == true) != Ok(true) {
            if Instant::now() > deadline {
                return Err("chromedriver did not become ready in 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", d._profile.path().display()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let session = d.http("POST", "/session", Some(&caps))?;
        d.session = session["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session in {session}"))?
            .to_string();
        Ok(d)
    }

    /// One command of this session; its `value`, or WebDriver's error.
    pub fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let path = format!("/session/{}{path}", self.session);
        let body = body.or_else(|| (method == "POST").then(|| json!({})));
        self.http(method, &path, body.as_ref())
    }

    /// [`Driver::cmd`], which must succeed.
    #[track_caller]
    pub fn must(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.cmd(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    pub fn goto(&self, url: &str) {
        self.must("POST", "/url", Some(json!({ "url": url })));
    }

    /// The element matching a CSS selector, waiting up to `secs` for it.
    #[track_caller]
    pub fn find(&self, css: &str, secs: u64) -> Element {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let found = self.cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            );
            match found {
                Ok(v) => {
                    let id = v[ELEMENT].as_str();
                    return Element(
                        id.unwrap_or_else(|| panic!("not an element: {v}"))
                            .to_string(),
                    );
                }
                Err(e) if Instant::now() > deadline => panic!("no element {css}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    pub fn clear(&self, e: &Element) {
        self.must("POST", &format!("/element/{}/clear", e.0), None);
    }

    pub fn type_into(&self, e: &Element, text: &str) {
        self.must(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        );
    }

    /// Runs a script (a function body; `arguments` are `args`) in the page.
    #[track_caller]
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.must(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Waits up to `secs` for `script` to return a truthy value; that value,
    /// or None.
    pub fn wait_js(&self, secs: u64, script: &str, args: Value) -> Option<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(v) = self.cmd(
                "POST",
                "/execute/sync",
                Some(json!({"script": script, "args": args.clone()})),
            ) {
                if !matches!(v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("")
                {
                    return Some(v);
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits for a `confirm()` (or alert) and accepts it; its text.
    #[track_caller]
    pub fn accept_prompt(&self, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(text) = self.cmd("GET", "/alert/text", None) {
                self.must("POST", "/alert/accept", None);
                return text.as_str().unwrap_or("").to_string();
            }
            assert!(Instant::now() < deadline, "no prompt within {secs} s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG of the top of the page.
    pub fn screenshot(&self, path: &Path) {
        self.must(
            "POST",
            "/execute/sync",
            Some(json!({"script": "window.scrollTo(0, 0);", "args": []})),
        );
        let shot = self.must("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().expect("base64 PNG"))
            .expect("valid base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the screenshot folder");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// One HTTP request to chromedriver; the response's `value`, or its
    /// WebDriver error (`error: message`).
    fn http(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut s = TcpStream::connect(&self.base).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.base,
            body.len()
        );
        s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        let payload = read_response(&mut s)?;
        let v: Value = serde_json::from_str(&payload)
            .map_err(|e| format!("not JSON ({e}): {}", &payload[..payload.len().min(200)]))?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            return Err(format!("{error}: {}", value["message"]));
        }
        Ok(value)
    }
}

/// Reads one response's body: chromedriver keeps the connection open
/// whatever the request says, so the body is read by its Content-Length
/// (or its chunks), not to the end of the stream.
fn read_response(s: &mut TcpStream) -> Result<String, String> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the connection closed before a response".into());
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_lowercase();
    let length = head.lines().find_map(|l| {
        l.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let body = &raw[head_end..];
        let done = match length {
            Some(n) => body.len() >= n,
            None if chunked => body.windows(5).any(|w| w == b"0\r\n\r\n"),
            None => false,
        };
        if done {
            break;
        }
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&raw[head_end..]).into_owned();
    Ok(if chunked { dechunk(&body) } else { body })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.http("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
