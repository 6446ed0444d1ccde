//! AMQP URI parsing (`amqp://user:pass@host:port/vhost`, `amqps://` for
//! TLS), after RabbitMQ's URI spec: user and password default to
//! guest/guest, the port to 5672 (amqps: 5671), an
//! absent path means vhost "/", and components are percent-decoded
//! (`%2f` is "/"). Pure: no I/O.

use std::fmt;

/// Where and as whom to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmqpUri {
    pub user: String,
    pub pass: String,
    pub host: String,
    pub port: u16,
    pub vhost: String,
    /// `amqps://`: TLS (see `stream`).
    pub tls: bool,
}

/// The default broker when `--uri` is not given.
pub const DEFAULT_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

impl AmqpUri {
    /// Parses an `amqp://` URI. Query parameters (`?heartbeat=…`) are
    /// accepted and ignored.
    pub fn parse(s: &str) -> Result<AmqpUri, String> {
        let (rest, tls) = match (s.strip_prefix("amqp://"), s.strip_prefix("amqps://")) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => {
                return Err(format!(
                    "URI {s:?}: only amqp:// and amqps:// URIs are supported"
                ))
            }
        };
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, pass) = match userinfo {
            Some(ui) => {
                let (u, p) = ui.split_once(':').unwrap_or((ui, ""));
                (percent_decode(u)?, percent_decode(p)?)
            }
            None => ("guest".to_string(), "guest".to_string()),
        };
        let (host, port) = split_host_port(hostport, if tls { 5671 } else { 5672 })?;
        let vhost = match path {
            None => "/".to_string(),
            Some(p) => {
                if p.contains('/') {
                    return Err(format!(
                        "URI {s:?}: the vhost must be one path segment (write \"/\" as %2f)"
                    ));
                }
                percent_decode(p)?
            }
        };
        if vhost.len() > 255 || user.len() > 255 {
            return Err(format!("URI {s:?}: vhost or user longer than 255 bytes"));
        }
        Ok(AmqpUri {
            user,
            pass,
            host,
            port,
            vhost,
            tls,
        })
    }

    /// `host:port` for `TcpStream::connect`.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Shows the URI without the password (safe to print in reports).
impl fmt::Display for AmqpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vhost = if self.vhost == "/" {
            "%2f"
        } else {
            &self.vhost
        };
        let scheme = if self.tls { "amqps" } else { "amqp" };
        write!(f, "{scheme}://{}@{}/{}", self.user, self.addr(), vhost)
    }
}

fn split_host_port(hp: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = hp.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| format!("bad IPv6 host in {hp:?}"))?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("bad host:port {hp:?}")),
        };
        (rest[..end].to_string(), port)
    } else {
        match hp.rsplit_once(':') {
            Some((h, p)) => (percent_decode(h)?, Some(p)),
            None => (percent_decode(hp)?, None),
        }
    };
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?,
    };
    let host = if host.is_empty() {
        "localhost".to_string()
    } else {
        host
    };
    Ok((host, port))
}

/// Decodes `%XX` escapes; refuses truncated escapes and invalid UTF-8.
pub fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_uri() {
        let u = AmqpUri::parse("amqp://alice:s3cr%40t@example.com:5673/%2f").unwrap();
        assert_eq!(u.user, "alice");
        assert_eq!(u.pass, "s3cr@t");
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, 5673);
        assert_eq!(u.vhost, "/");
        assert_eq!(u.addr(), "example.com:5673");
    }

    #[test]
    fn defaults() {
        let u = AmqpUri::parse("amqp://localhost").unwrap();
        assert_eq!((u.user.as_str(), u.pass.as_str()), ("guest", "guest"));
        assert_eq!(u.port, 5672);
        assert_eq!(u.vhost, "/");
        // An empty path segment is the empty vhost, per the URI spec.
        assert_eq!(AmqpUri::parse("amqp://h/").unwrap().vhost, "");
        assert_eq!(AmqpUri::parse("amqp://").unwrap().host, "localhost");
    }

    #[test]
    fn named_vhost_and_query() {
        let u = AmqpUri::parse("amqp://u:p@h:1/prod?heartbeat=10").unwrap();
        assert_eq!(u.vhost, "prod");
        assert_eq!(u.port, 1);
        let u = AmqpUri::parse("amqp://u@h/a%2Fb").unwrap();
        assert_eq!(u.user, "u");
        assert_eq!(u.pass, "");
        assert_eq!(u.vhost, "a/b");
    }

    #[test]
    fn ipv6() {
        let u = AmqpUri::parse("amqp://[::1]:5673/%2f").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.addr(), "[::1]:5673");
        assert_eq!(AmqpUri::parse("amqp://[::1]").unwrap().port, 5672);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(AmqpUri::parse("http://h").is_err());
        assert!(AmqpUri::parse("http://h").is_err());
        let tls = AmqpUri::parse("amqps://h").unwrap();
        assert!(tls.tls && tls.port == 5671);
        assert!(!AmqpUri::parse("amqp://h").unwrap().tls);
        assert!(AmqpUri::parse("amqp://h:99999").is_err());
        assert!(AmqpUri::parse("amqp://h:x").is_err());
        assert!(AmqpUri::parse("amqp://h/a/b").is_err());
        assert!(AmqpUri::parse("amqp://h/%2").is_err());
        assert!(AmqpUri::parse("amqp://h/%zz").is_err());
        assert!(AmqpUri::parse("amqp://h/%ff").is_err());
        assert!(AmqpUri::parse("amqp://[::1/").is_err());
        let long = format!("amqp://h/{}", "v".repeat(256));
        assert!(AmqpUri::parse(&long).is_err());
    }

    #[test]
    fn display_hides_password() {
        let u = AmqpUri::parse("amqp://guest:secret@127.0.0.1:5672/%2f").unwrap();
        let shown = u.to_string();
        assert_eq!(shown, "amqp://guest@127.0.0.1:5672/%2f");
        assert!(!shown.contains("secret"));
    }
}
