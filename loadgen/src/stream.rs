//! The byte stream under the client: a plain `TcpStream` for `amqp://`, or
//! TLS over it for `amqps://` (rustls, ring provider; the CA to trust is a
//! PEM file named by `LOADGEN_TLS_CA`, the server name is the URI's host).
//!
//! A producer's connection is read by one thread (acks) and written by
//! another, so a `Stream` clones into handles that share the TLS session
//! behind a mutex. Neither side holds that mutex while it blocks on the
//! socket: records are encrypted (or decrypted) under the lock, and written
//! (or read) outside it, writers serialised by a second lock so the records
//! reach the socket in the order they were sealed.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// The environment variable naming the CA certificates (PEM) for amqps.
pub const CA_ENV: &str = "LOADGEN_TLS_CA";

/// Ciphertext bytes per socket read.
const READ_CHUNK: usize = 64 * 1024;

pub enum Stream {
    Plain(TcpStream),
    Tls(TlsStream),
}

/// One handle on a TLS connection.
pub struct TlsStream {
    socket: TcpStream,
    shared: Arc<Shared>,
    /// Plaintext decrypted by this handle and not yet returned.
    plaintext: Vec<u8>,
    taken: usize,
    ciphertext: Vec<u8>,
}

struct Shared {
    session: Mutex<ClientConnection>,
    /// Held while sealed records are written, so they keep their order.
    writing: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Stream {
    /// Sets SO_SNDBUF on the TCP socket.
    pub fn set_send_buffer(&self, bytes: u32) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let fd = match self {
            Stream::Plain(s) => s.as_raw_fd(),
            Stream::Tls(t) => t.socket.as_raw_fd(),
        };
        let v = bytes as libc::c_int;
        // SAFETY: a valid descriptor and a c_int option value of the size given.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                &v as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Connects to `addr`; with `tls`, runs the handshake for `host`.
    pub fn connect(addr: &str, host: &str, tls: bool) -> io::Result<Stream> {
        let socket = TcpStream::connect(addr)?;
        socket.set_nodelay(true)?;
        if !tls {
            return Ok(Stream::Plain(socket));
        }
        let config = client_config()?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut session =
            ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)?;
        // The caller bounds what it writes at once (its write buffer).
        session.set_buffer_limit(None);
        let mut stream = TlsStream {
            socket,
            shared: Arc::new(Shared {
                session: Mutex::new(session),
                writing: Mutex::new(()),
            }),
            plaintext: Vec::new(),
            taken: 0,
            ciphertext: vec![0; READ_CHUNK],
        };
        while lock(&stream.shared.session).is_handshaking() {
            stream.send_pending()?;
            if lock(&stream.shared.session).is_handshaking() && !stream.receive(&mut [])?.1 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        stream.send_pending()?;
        Ok(Stream::Tls(stream))
    }

    fn socket(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.socket,
        }
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.socket().set_read_timeout(t)
    }

    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.socket().set_write_timeout(t)
    }

    /// A second handle (for a reader thread) on the same connection.
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Plain(s) => Stream::Plain(s.try_clone()?),
            Stream::Tls(t) => Stream::Tls(TlsStream {
                socket: t.socket.try_clone()?,
                shared: t.shared.clone(),
                plaintext: Vec::new(),
                taken: 0,
                ciphertext: vec![0; READ_CHUNK],
            }),
        })
    }
}

fn client_config() -> io::Result<ClientConfig> {
    let path = std::env::var(CA_ENV).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "amqps:// needs {CA_ENV}=<PEM file of the CA that signed the broker's certificate>"
            ),
        )
    })?;
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&path)
        .and_then(|c| c.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{CA_ENV} {path}: {e}"))
        })?;
    for cert in certs {
        roots.add(cert).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{CA_ENV} {path}: {e}"))
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl TlsStream {
    /// Writes the records rustls has sealed (outside the session lock).
    fn send_pending(&mut self) -> io::Result<()> {
        let _order = lock(&self.shared.writing);
        let mut sealed = Vec::new();
        {
            let mut session = lock(&self.shared.session);
            while session.wants_write() {
                session.write_tls(&mut sealed)?;
            }
        }
        self.socket.write_all(&sealed)
    }

    /// One socket read (outside the lock), decrypted into `plaintext`.
    /// False at the end of the session (close_notify, or the socket closed).
    /// Plaintext goes straight into `out` while it has room (the rest is
    /// kept); returns the bytes put in `out` and whether the session is open.
    fn receive(&mut self, out: &mut [u8]) -> io::Result<(usize, bool)> {
        let n = self.socket.read(&mut self.ciphertext)?;
        let mut session = lock(&self.shared.session);
        if n == 0 {
            session.read_tls(&mut io::empty())?;
        }
        let mut fresh = &self.ciphertext[..n];
        let mut open = n > 0;
        let mut given = 0;
        loop {
            if !fresh.is_empty() {
                session.read_tls(&mut fresh)?;
            }
            let state = session
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let mut available = state.plaintext_bytes_to_read();
            if available > 0 && given < out.len() {
                let n = session.reader().read(&mut out[given..])?;
                given += n;
                available -= n;
            }
            if available > 0 {
                let start = self.plaintext.len();
                self.plaintext.resize(start + available, 0);
                session.reader().read_exact(&mut self.plaintext[start..])?;
            }
            if state.peer_has_closed() {
                open = false;
            }
            if fresh.is_empty() {
                break;
            }
        }
        let wants_write = session.wants_write();
        drop(session);
        if wants_write {
            self.send_pending()?;
        }
        Ok((given, open))
    }
}

impl Read for Stream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let t = match self {
            Stream::Plain(s) => return s.read(out),
            Stream::Tls(t) => t,
        };
        loop {
            if t.taken < t.plaintext.len() {
                let n = out.len().min(t.plaintext.len() - t.taken);
                out[..n].copy_from_slice(&t.plaintext[t.taken..t.taken + n]);
                t.taken += n;
                if t.taken == t.plaintext.len() {
                    t.plaintext.clear();
                    t.taken = 0;
                }
                return Ok(n);
            }
            let (given, open) = t.receive(out)?;
            if given > 0 || (!open && t.plaintext.is_empty()) {
                return Ok(given);
            }
        }
    }
}

impl Write for Stream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let t = match self {
            Stream::Plain(s) => return s.write(data),
            Stream::Tls(t) => t,
        };
        lock(&t.shared.session).writer().write_all(data)?;
        t.send_pending()?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.send_pending(),
        }
    }
}
