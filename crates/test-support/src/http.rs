//! A smart-HTTP git server for tests: `git http-backend` run as a CGI behind a small
//! HTTP/1.1 front with optional basic authentication (or tokens), optional TLS and a switch
//! to simulate outages.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::X509;
use tempfile::TempDir;

use crate::encoding::base64_decode;
use crate::git::git_exec_path;
use crate::tls::{TestCa, TlsIdentity};

/// Longest request line or header line accepted.
const MAX_LINE: u64 = 64 * 1024;
/// Most header lines accepted in one request.
const MAX_HEADERS: usize = 200;

/// The user name written into URLs by [`GitHttpServer::url_with_credentials`] when any
/// user name is accepted ([`GitHttpServerBuilder::accept_any_user_with_password`]).
pub const TOKEN_URL_USER: &str = "oauth2";

/// The accepted user name (`None`: any) and password; the password is never printed.
#[derive(Clone)]
struct Credentials {
    user: Option<String>,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user.as_deref().unwrap_or("<any>"))
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The user of a request whose `Authorization` header matches, else `None`.
    fn check(&self, authorization: Option<&str>) -> Option<String> {
        let (scheme, token) = authorization?.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(base64_decode(token.trim())?).ok()?;
        let (user, password) = decoded.split_once(':')?;
        let user_ok = self.user.as_deref().is_none_or(|expected| expected == user);
        (user_ok && password == self.password).then(|| user.to_owned())
    }

    /// The user name to put in URLs.
    fn url_user(&self) -> &str {
        self.user.as_deref().unwrap_or(TOKEN_URL_USER)
    }
}

/// Options of a [`GitHttpServer`]; made by [`GitHttpServer::builder`].
#[derive(Debug, Clone)]
pub struct GitHttpServerBuilder {
    project_root: PathBuf,
    auth: Option<Credentials>,
    port: u16,
    tls: Option<TlsIdentity>,
}

impl GitHttpServerBuilder {
    /// Requires HTTP basic authentication with this user and password. Requests without
    /// them, or with others, get `401` and `WWW-Authenticate: Basic realm="git"` and are
    /// counted by [`GitHttpServer::unauthorized`]. Replaces an earlier `basic_auth` or
    /// [`accept_any_user_with_password`](Self::accept_any_user_with_password).
    ///
    /// Access tokens are tested with this too: git clients send a token as the password of
    /// basic authentication (e.g. `basic_auth("x-access-token", token)`); for hosts that
    /// ignore the user name, see [`accept_any_user_with_password`](Self::accept_any_user_with_password).
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some(Credentials {
            user: Some(user.to_owned()),
            password: password.to_owned(),
        });
        self
    }

    /// Requires basic authentication with this password (typically an access token) and
    /// any user name, as hosts do that take tokens: `x-token-auth:<token>`,
    /// `oauth2:<token>` and `<anything>:<token>` all pass, and `REMOTE_USER` is the name
    /// given. [`GitHttpServer::url_with_credentials`] uses the user
    /// [`TOKEN_URL_USER`]. Replaces an earlier [`basic_auth`](Self::basic_auth).
    pub fn accept_any_user_with_password(mut self, token: &str) -> Self {
        self.auth = Some(Credentials {
            user: None,
            password: token.to_owned(),
        });
        self
    }

    /// Serves HTTPS instead of HTTP, with the CA's certificate for `127.0.0.1` and
    /// `localhost` ([`TestCa::server_identity`]); URLs start with `https://`. Clients must
    /// trust [`TestCa::ca_path`] (e.g. `GIT_SSL_CAINFO`).
    pub fn tls(self, ca: &TestCa) -> Self {
        self.tls_identity(ca.server_identity())
    }

    /// Serves HTTPS with this certificate chain and key, e.g. one from
    /// [`TestCa::issue_server_identity`] for another host name.
    pub fn tls_identity(mut self, identity: TlsIdentity) -> Self {
        self.tls = Some(identity);
        self
    }

    /// Listens on this port instead of a free one, e.g. to start a server again on the
    /// port of one that was stopped (the remote coming back at the same URL).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Binds `127.0.0.1` and starts serving.
    ///
    /// # Panics
    /// When the port cannot be bound, `git --exec-path` fails or OpenSSL refuses the TLS
    /// certificate or key.
    pub fn start(self) -> GitHttpServer {
        let tls = self.tls.as_ref().map(acceptor);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, self.port))
            .unwrap_or_else(|e| panic!("bind 127.0.0.1:{}: {e}", self.port));
        let addr = listener.local_addr().expect("listener address");
        let backend = git_exec_path().join("git-http-backend");
        let home = tempfile::Builder::new()
            .prefix("git-http-home-")
            .tempdir()
            .expect("create a HOME directory for git http-backend");
        let shared = Arc::new(Shared {
            project_root: self.project_root,
            backend,
            home,
            auth: self.auth.clone(),
            tls,
            down: AtomicBool::new(false),
            fail_next: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            unauthorized: AtomicUsize::new(0),
            tls_failures: AtomicUsize::new(0),
            conns: Mutex::new(Connections::default()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name(format!("git-http-accept-{}", addr.port()))
            .spawn(move || accept_loop(&listener, &accept_shared))
            .expect("spawn the accept thread");
        GitHttpServer {
            addr,
            scheme: if self.tls.is_some() { "https" } else { "http" },
            auth: self.auth,
            shared,
            accept: Mutex::new(Some(accept)),
        }
    }
}

/// Builds the TLS acceptor of a server.
fn acceptor(identity: &TlsIdentity) -> SslAcceptor {
    let build = || -> Result<SslAcceptor, openssl::error::ErrorStack> {
        let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        let key = PKey::private_key_from_pem(identity.key_pem().as_bytes())?;
        builder.set_private_key(&key)?;
        let cert = X509::from_pem(identity.cert_pem().as_bytes())?;
        builder.set_certificate(&cert)?;
        for pem in identity.intermediates_pem() {
            builder.add_extra_chain_cert(X509::from_pem(pem.as_bytes())?)?;
        }
        builder.check_private_key()?;
        Ok(builder.build())
    };
    build().unwrap_or_else(|e| panic!("OpenSSL refused the TLS identity {identity:?}: {e}"))
}

/// A smart-HTTP git server on `127.0.0.1`, serving every repository under a project root
/// through `git http-backend` (the one next to the `git` first on `PATH`); over HTTPS with
/// [`GitHttpServerBuilder::tls`].
///
/// One thread accepts connections and each connection gets its own thread, with
/// HTTP/1.1 keep-alive, `TCP_NODELAY`, `Expect: 100-continue`, and request bodies sent
/// with `Content-Length` or `Transfer-Encoding: chunked` (libgit2 and git send pushes
/// chunked). Pushes are enabled: `REMOTE_USER` is the authenticated user, or `anonymous`
/// without authentication. Server-side hooks of the repositories run.
///
/// [`set_down`](Self::set_down) and [`fail_next`](Self::fail_next) make it answer `503`
/// without closing the listener; [`stop`](Self::stop) (also run on drop) closes the
/// listener and every open connection, then waits for the connection threads.
pub struct GitHttpServer {
    addr: SocketAddr,
    scheme: &'static str,
    auth: Option<Credentials>,
    shared: Arc<Shared>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for GitHttpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHttpServer")
            .field("addr", &self.addr)
            .field("project_root", &self.shared.project_root)
            .field("auth", &self.auth)
            .field("scheme", &self.scheme)
            .field("down", &self.shared.down.load(Ordering::SeqCst))
            .field("requests", &self.requests())
            .field("unauthorized", &self.unauthorized())
            .finish_non_exhaustive()
    }
}

impl GitHttpServer {
    /// Starts configuring a server for the repositories under `project_root` (a request
    /// for `/remote.git/info/refs` serves `<project_root>/remote.git`).
    pub fn builder(project_root: &Path) -> GitHttpServerBuilder {
        GitHttpServerBuilder {
            project_root: project_root.to_path_buf(),
            auth: None,
            port: 0,
            tls: None,
        }
    }

    /// The URL of a repository, e.g. `url("remote.git")` is
    /// `http://127.0.0.1:PORT/remote.git` (`https://` with TLS). It holds no credentials.
    pub fn url(&self, repo_relative_path: &str) -> String {
        format!(
            "{}://{}/{}",
            self.scheme,
            self.addr,
            repo_relative_path.trim_start_matches('/')
        )
    }

    /// Like [`url`](Self::url), with the basic-auth user and password in it
    /// (`http://user:pass@127.0.0.1:PORT/remote.git`), for the git CLI. Without
    /// authentication it equals `url`; when any user is accepted, the user is
    /// [`TOKEN_URL_USER`].
    pub fn url_with_credentials(&self, repo_relative_path: &str) -> String {
        match &self.auth {
            None => self.url(repo_relative_path),
            Some(c) => {
                self.url_with_user_and_password(c.url_user(), &c.password, repo_relative_path)
            }
        }
    }

    /// Like [`url`](Self::url), with this user and password in it (percent-encoded),
    /// whatever the server accepts: for wrong-credential tests.
    pub fn url_with_user_and_password(
        &self,
        user: &str,
        password: &str,
        repo_relative_path: &str,
    ) -> String {
        format!(
            "{}://{}:{}@{}/{}",
            self.scheme,
            percent_encode(user),
            percent_encode(password),
            self.addr,
            repo_relative_path.trim_start_matches('/')
        )
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address the server listens on (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many HTTP requests were received so far, whatever their answer.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// How many requests were answered `401 Unauthorized` so far.
    pub fn unauthorized(&self) -> usize {
        self.shared.unauthorized.load(Ordering::SeqCst)
    }

    /// How many connections failed their TLS handshake so far; always 0 without TLS.
    /// A client that refuses the certificate during the handshake (`openssl s_client
    /// -verify_return_error`) or speaks plain HTTP counts here. The git CLI (curl with
    /// GnuTLS on Debian) and libgit2 check the certificate after the handshake and hang up
    /// without a request instead: assert that [`requests`](Self::requests) stayed 0.
    pub fn tls_failures(&self) -> usize {
        self.shared.tls_failures.load(Ordering::SeqCst)
    }

    /// While `down` is true, every request is answered `503 Service Unavailable`, as by a
    /// proxy whose git server is gone; connections are still accepted.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Answers the next `n` requests with `503 Service Unavailable` (replacing any count
    /// still pending), then serves normally again.
    pub fn fail_next(&self, n: usize) {
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }

    /// Stops the server: closes the listener (new connections are refused), shuts down
    /// every open connection and waits for the running requests to end. Idempotent; also
    /// run on drop.
    pub fn stop(&self) {
        let Some(accept) = lock(&self.accept).take() else {
            return;
        };
        {
            let mut conns = lock(&self.shared.conns);
            conns.stopping = true;
            for conn in conns.open.values() {
                let _ = conn.stream.shutdown(Shutdown::Both);
            }
        }
        // Wake the accept thread, which sees `stopping` and drops the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        let _ = accept.join();
        let open = std::mem::take(&mut lock(&self.shared.conns).open);
        for (_, conn) in open {
            if let Some(thread) = conn.thread {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// State shared by the server handle, the accept thread and the connection threads.
struct Shared {
    project_root: PathBuf,
    backend: PathBuf,
    home: TempDir,
    auth: Option<Credentials>,
    tls: Option<SslAcceptor>,
    down: AtomicBool,
    fail_next: AtomicUsize,
    requests: AtomicUsize,
    unauthorized: AtomicUsize,
    tls_failures: AtomicUsize,
    conns: Mutex<Connections>,
}

/// The open connections, so that `stop` can shut them down and wait for their threads.
#[derive(Default)]
struct Connections {
    stopping: bool,
    next_id: u64,
    open: HashMap<u64, Connection>,
}

struct Connection {
    stream: TcpStream,
    thread: Option<JoinHandle<()>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Records a new connection; `None` when the server is stopping.
    fn register(&self, stream: &TcpStream) -> Option<u64> {
        let clone = stream.try_clone().ok()?;
        let mut conns = lock(&self.conns);
        if conns.stopping {
            return None;
        }
        let id = conns.next_id;
        conns.next_id += 1;
        conns.open.insert(
            id,
            Connection {
                stream: clone,
                thread: None,
            },
        );
        Some(id)
    }

    fn is_stopping(&self) -> bool {
        lock(&self.conns).stopping
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        if shared.is_stopping() {
            return;
        }
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(_) => {
                // E.g. out of file descriptors: do not spin.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        // Without it every request stalls ~40 ms (Nagle + delayed ACK on loopback).
        let _ = stream.set_nodelay(true);
        let Some(id) = shared.register(&stream) else {
            return;
        };
        let conn_shared = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name(format!("git-http-conn-{id}"))
            .spawn(move || {
                match &conn_shared.tls {
                    None => serve_connection(stream, peer, &conn_shared),
                    Some(acceptor) => match acceptor.accept(stream) {
                        Ok(mut tls) => {
                            serve_connection(&mut tls, peer, &conn_shared);
                            // Best effort close_notify; the peer may be gone already.
                            let _ = tls.shutdown();
                        }
                        Err(_) => {
                            conn_shared.tls_failures.fetch_add(1, Ordering::SeqCst);
                        }
                    },
                }
                lock(&conn_shared.conns).open.remove(&id);
            });
        let mut conns = lock(&shared.conns);
        match spawned {
            Ok(handle) => {
                // The thread may already be done and gone from the map: then detach it.
                if let Some(conn) = conns.open.get_mut(&id) {
                    conn.thread = Some(handle);
                }
            }
            Err(_) => {
                conns.open.remove(&id);
            }
        }
    }
}

/// One parsed request head.
#[derive(Debug)]
struct RequestHead {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl RequestHead {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    fn keep_alive(&self) -> bool {
        if self.header_has_token("Connection", "close") {
            false
        } else if self.version == "HTTP/1.0" {
            self.header_has_token("Connection", "keep-alive")
        } else {
            true
        }
    }
}

/// An answer to send: status, headers (without `Content-Length`) and body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
        }
    }
}

/// Serves one connection until the client closes it, asks to, or the server stops.
/// Generic over the stream so that a TLS stream can be served the same way.
fn serve_connection<S: Read + Write>(stream: S, peer: SocketAddr, shared: &Shared) {
    let mut reader = BufReader::new(stream);
    loop {
        if shared.is_stopping() {
            return;
        }
        let head = match read_head(&mut reader) {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(e) => {
                let _ = write_response(
                    reader.get_mut(),
                    &Response::text(400, &format!("bad request: {e}\n")),
                    false,
                );
                return;
            }
        };
        shared.requests.fetch_add(1, Ordering::SeqCst);
        if head.header_has_token("Expect", "100-continue") {
            let out = reader.get_mut();
            if out
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .and_then(|()| out.flush())
                .is_err()
            {
                return;
            }
        }
        let body = match read_body(&mut reader, &head) {
            Ok(body) => body,
            Err(e) => {
                let _ = write_response(
                    reader.get_mut(),
                    &Response::text(400, &format!("bad request body: {e}\n")),
                    false,
                );
                return;
            }
        };
        let keep_alive = head.keep_alive();
        let response = handle(&head, &body, peer, shared);
        if write_response(reader.get_mut(), &response, keep_alive).is_err() || !keep_alive {
            return;
        }
    }
}

/// Reads one line (without its line ending); `None` at end of stream.
fn read_line<R: BufRead>(reader: &mut R) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "line too long or truncated",
        ));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "line is not UTF-8"))
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// Reads a request line and its headers; `None` when the client closed the connection
/// between requests.
fn read_head<R: BufRead>(reader: &mut R) -> io::Result<Option<RequestHead>> {
    let request_line = loop {
        match read_line(reader) {
            Ok(None) => return Ok(None),
            Ok(Some(line)) if line.is_empty() => continue,
            Ok(Some(line)) => break line,
            // A connection reset or shut down between requests is a normal end.
            Err(e) if e.kind() != io::ErrorKind::InvalidData => return Ok(None),
            Err(e) => return Err(e),
        }
    };
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(invalid("unsupported HTTP version"));
    }
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or_else(|| invalid("end of stream in headers"))?;
        if line.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADERS {
            return Err(invalid("too many headers"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("malformed header"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(Some(RequestHead {
        method: method.to_owned(),
        target: target.to_owned(),
        version: version.to_owned(),
        headers,
    }))
}

/// Reads the request body, de-chunking `Transfer-Encoding: chunked`.
fn read_body<R: BufRead>(reader: &mut R, head: &RequestHead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if head.header_has_token("Transfer-Encoding", "chunked") {
        loop {
            let line = read_line(reader)?.ok_or_else(|| invalid("end of stream in chunks"))?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size =
                usize::from_str_radix(size, 16).map_err(|_| invalid("malformed chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !read_line(reader)?
                    .ok_or_else(|| invalid("end of stream in trailers"))?
                    .is_empty()
                {}
                return Ok(body);
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            if !read_line(reader)?
                .ok_or_else(|| invalid("end of stream after chunk"))?
                .is_empty()
            {
                return Err(invalid("chunk not followed by CRLF"));
            }
        }
    } else if let Some(len) = head.header("Content-Length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| invalid("malformed Content-Length"))?;
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(body)
}

fn write_response<W: Write>(out: &mut W, response: &Response, keep_alive: bool) -> io::Result<()> {
    let mut buf = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        buf.push_str(&format!("{name}: {value}\r\n"));
    }
    buf.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    if !keep_alive {
        buf.push_str("Connection: close\r\n");
    }
    buf.push_str("\r\n");
    let mut bytes = buf.into_bytes();
    bytes.extend_from_slice(&response.body);
    out.write_all(&bytes)?;
    out.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        415 => "Unsupported Media Type",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Decides the answer: outage, authentication, then `git http-backend`.
fn handle(head: &RequestHead, body: &[u8], peer: SocketAddr, shared: &Shared) -> Response {
    if shared.down.load(Ordering::SeqCst)
        || shared
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        return Response::text(503, "service unavailable (simulated outage)\n");
    }
    let user = match &shared.auth {
        None => "anonymous".to_owned(),
        Some(credentials) => match credentials.check(head.header("Authorization")) {
            Some(user) => user,
            None => {
                shared.unauthorized.fetch_add(1, Ordering::SeqCst);
                let mut response = Response::text(401, "authentication required\n");
                response
                    .headers
                    .push(("WWW-Authenticate".into(), "Basic realm=\"git\"".into()));
                return response;
            }
        },
    };
    run_backend(head, body, peer, &user, shared)
}

/// Runs `git http-backend` as a CGI for one request of `user`.
fn run_backend(
    head: &RequestHead,
    body: &[u8],
    peer: SocketAddr,
    user: &str,
    shared: &Shared,
) -> Response {
    // An absolute-form target (`http://host/path`) is reduced to its path.
    let mut target = head.target.as_str();
    if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        target = rest.find('/').map_or("/", |i| &rest[i..]);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut cmd = Command::new(&shared.backend);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", shared.home.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_PROJECT_ROOT", &shared.project_root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REMOTE_USER", user)
        .env("REMOTE_ADDR", peer.ip().to_string())
        .env("REQUEST_METHOD", &head.method)
        .env("PATH_INFO", percent_decode(path))
        .env("QUERY_STRING", query)
        .env(
            "CONTENT_TYPE",
            head.header("Content-Type").unwrap_or_default(),
        )
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(v) = head.header("Content-Encoding") {
        cmd.env("HTTP_CONTENT_ENCODING", v);
    }
    if let Some(v) = head.header("Git-Protocol") {
        cmd.env("HTTP_GIT_PROTOCOL", v);
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Response::text(
                500,
                &format!("cannot start {}: {e}\n", shared.backend.display()),
            );
        }
    };
    // Feed stdin from another thread: the backend may write before it has read it all.
    let output = thread::scope(|scope| {
        if let Some(mut stdin) = child.stdin.take() {
            scope.spawn(move || {
                let _ = stdin.write_all(body);
            });
        }
        child.wait_with_output()
    });
    let output = match output {
        Ok(output) => output,
        Err(e) => return Response::text(500, &format!("git http-backend failed: {e}\n")),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let response = parse_cgi(&output.stdout);
    if !stderr.trim().is_empty() && (response.status >= 400 || !output.status.success()) {
        eprintln!(
            "git-http-server: {} {} -> {}: {}",
            head.method,
            head.target,
            response.status,
            stderr.trim_end()
        );
    }
    response
}

/// Splits CGI output into `Status:`, other headers and the body.
fn parse_cgi(out: &[u8]) -> Response {
    let crlf = find(out, b"\r\n\r\n").map(|i| (i, 4));
    let lf = find(out, b"\n\n").map(|i| (i, 2));
    let split = match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    let Some((end, sep)) = split else {
        return Response::text(502, "git http-backend sent no CGI header\n");
    };
    let mut response = Response {
        status: 200,
        headers: Vec::new(),
        body: out[end + sep..].to_vec(),
    };
    for line in String::from_utf8_lossy(&out[..end]).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("Status") {
            response.status = value
                .split_whitespace()
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(500);
        } else if !["Content-Length", "Transfer-Encoding", "Connection"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
        {
            response.headers.push((name.to_owned(), value.to_owned()));
        }
    }
    response
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Returns a port on `127.0.0.1` that was free a moment ago (bound to port 0 and released).
/// Another process may take it before it is used; prefer letting servers bind port 0.
///
/// # Panics
/// When no port can be bound.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind a free port on 127.0.0.1")
        .port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_check_user_and_password() {
        use crate::encoding::base64_encode;
        let header = |s: &str| format!("Basic {}", base64_encode(s.as_bytes()));
        let alice = Credentials {
            user: Some("alice".into()),
            password: "s3cret".into(),
        };
        assert_eq!(
            alice.check(Some(&header("alice:s3cret"))).as_deref(),
            Some("alice")
        );
        let lower = header("alice:s3cret").replace("Basic", "basic");
        assert_eq!(alice.check(Some(&lower)).as_deref(), Some("alice"));
        for bad in ["bob:s3cret", "alice:wrong", "alice", "alice:s3cret:x", ""] {
            assert_eq!(alice.check(Some(&header(bad))), None, "{bad}");
        }
        assert_eq!(alice.check(None), None);
        assert_eq!(alice.check(Some("Bearer s3cret")), None);
        assert_eq!(alice.check(Some("Basic !!!")), None);

        let token = Credentials {
            user: None,
            password: "tok:en".into(),
        };
        for user in ["x-token-auth", "oauth2", "x-access-token", ""] {
            let given = header(&format!("{user}:tok:en"));
            assert_eq!(token.check(Some(&given)).as_deref(), Some(user));
        }
        assert_eq!(token.check(Some(&header("oauth2:tok"))), None);
        assert_eq!(token.url_user(), TOKEN_URL_USER);
        assert_eq!(alice.url_user(), "alice");
    }

    #[test]
    fn percent_coding() {
        assert_eq!(percent_decode("/a%20b/c%2"), "/a b/c%2");
        assert_eq!(percent_decode("%41%"), "A%");
        assert_eq!(percent_encode("a b:@"), "a%20b%3A%40");
    }

    #[test]
    fn chunked_body_is_decoded() {
        let raw = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\n";
        let mut reader = BufReader::new(&raw[..]);
        let head = read_head(&mut reader).unwrap().unwrap();
        assert_eq!(read_body(&mut reader, &head).unwrap(), b"Wikipedia");
        assert!(read_head(&mut reader).unwrap().is_none());
    }

    /// An in-memory connection: what the client sent, and what the server answered.
    struct Duplex {
        input: io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_generic_stream_gets_100_continue_401_and_keep_alive_until_close() {
        let shared = Shared {
            project_root: PathBuf::from("/nonexistent"),
            backend: PathBuf::from("/nonexistent/git-http-backend"),
            home: tempfile::tempdir().unwrap(),
            auth: Some(Credentials {
                user: Some("u".into()),
                password: "p".into(),
            }),
            tls: None,
            down: AtomicBool::new(false),
            fail_next: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            unauthorized: AtomicUsize::new(0),
            tls_failures: AtomicUsize::new(0),
            conns: Mutex::new(Connections::default()),
        };
        let mut conn = Duplex {
            input: io::Cursor::new(
                b"POST /r.git/git-receive-pack HTTP/1.1\r\nExpect: 100-continue\r\n\
                  Transfer-Encoding: chunked\r\nAuthorization: Basic dTp4\r\n\r\n\
                  3\r\nabc\r\n0\r\n\r\n\
                  GET /r.git/info/refs HTTP/1.1\r\nConnection: close\r\n\r\n\
                  GET /never-read HTTP/1.1\r\n\r\n"
                    .to_vec(),
            ),
            output: Vec::new(),
        };
        let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
        serve_connection(&mut conn, peer, &shared);
        let out = String::from_utf8(conn.output).unwrap();
        assert!(out.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 Unauthorized\r\n"));
        assert_eq!(
            out.matches("WWW-Authenticate: Basic realm=\"git\"\r\n")
                .count(),
            2
        );
        assert_eq!(out.matches("Connection: close\r\n").count(), 1, "{out}");
        assert!(out.ends_with("Connection: close\r\n\r\nauthentication required\n"));
        assert_eq!(shared.requests.load(Ordering::SeqCst), 2);
        assert_eq!(shared.unauthorized.load(Ordering::SeqCst), 2);

        shared.fail_next.store(1, Ordering::SeqCst);
        let mut conn = Duplex {
            input: io::Cursor::new(b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n".to_vec()),
            output: Vec::new(),
        };
        serve_connection(&mut conn, peer, &shared);
        let out = String::from_utf8(conn.output).unwrap();
        // HTTP/1.0 without keep-alive: one answer, then the connection is closed.
        assert!(
            out.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{out}"
        );
        assert_eq!(out.matches("HTTP/1.1").count(), 1, "{out}");
        assert_eq!(shared.fail_next.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn cgi_output_is_split() {
        let r = parse_cgi(b"Status: 403 Forbidden\r\nContent-Type: text/plain\r\n\r\nno\n\n");
        assert_eq!(r.status, 403);
        assert_eq!(
            r.headers,
            vec![("Content-Type".into(), "text/plain".into())]
        );
        assert_eq!(r.body, b"no\n\n");
        let r = parse_cgi(b"Content-Type: a\n\nbody");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"body"[..]));
    }
}
