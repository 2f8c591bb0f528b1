//! The HTTP transport: our own accept loop over hyper's HTTP/1.1 connection (what `axum::serve`
//! does inside), with admission and time limits that `axum::serve` does not have.
//!
//! - **Connections are capped, never queued.** At most `http.max_connections` TCP connections
//!   are open at once, and at most `http.max_connections_per_ip` from one client address (an
//!   IPv6 client is counted by its /64; `127.0.0.1` and `::1` are not limited, so the operator on
//!   the box always gets in). A connection beyond a cap is accepted and closed at once, counted
//!   in `sutantra_http_connections_refused_total`; nothing waits in a queue.
//! - **Slow clients are closed.** Request headers (and, over HTTPS, the TLS handshake before
//!   them) must arrive within `http.header_timeout_ms`, counted from the accept for the first
//!   request and from the first byte for the next ones; a kept-alive connection with no request
//!   in flight is closed after `http.idle_timeout_ms`. A slowloris client that trickles a header
//!   a byte at a time therefore holds one of its few slots for a few seconds, not forever.
//!   Request bodies are timed by the handlers (`http.body_timeout_ms`).
//! - **accept() errors do not stop the server.** Out of file descriptors (EMFILE, ENFILE) or
//!   memory: log (at most every 10 s), wait 50 ms, accept again. [`raise_nofile_limit`] lifts
//!   the process's soft limit on open files to the hard limit when the server starts, so the
//!   caps above are reached long before the descriptors run out.
//! - **HTTPS** with a [`Tls`] configuration: the same routes, TLS on the same listener (no plain
//!   HTTP beside it); a reload swaps the certificate for new connections.
//! - **Graceful shutdown**: stop accepting, let requests in flight finish for up to
//!   [`ServeOptions::shutdown_grace`], then drop what is left.
//!
//! Handlers can extract the client's address as `ConnectInfo<SocketAddr>` (IPv4-mapped IPv6
//! addresses are given as IPv4).

use super::limit::address_key;
use super::tls::Tls;
use crate::config::HttpConfig;
use crate::stats::Stats;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// How long a graceful shutdown waits for requests in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// The pause after an `accept()` failure such as EMFILE before the next try.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// At most one log line per this period for repeated refusals and accept errors.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The transport's limits and the HTTPS configuration; [`ServeOptions::new`] reads `[http]`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// TCP connections open at once; more are closed at once.
    pub max_connections: usize,
    /// TCP connections open at once from one client address (`127.0.0.1`, `::1` excepted).
    pub max_connections_per_ip: usize,
    /// Time for a request's headers (and the TLS handshake before the first request).
    pub header_timeout: Duration,
    /// Time a kept-alive connection may sit with no request in flight.
    pub idle_timeout: Duration,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Serve HTTPS with this certificate (plain HTTP when `None`).
    pub tls: Option<Arc<Tls>>,
    /// Where the counters go (`sutantra_http_*`).
    pub stats: Arc<Stats>,
}

impl ServeOptions {
    /// The limits of `[http]`, plain HTTP (add [`ServeOptions::tls`] for HTTPS).
    pub fn new(http: &HttpConfig, stats: Arc<Stats>) -> Self {
        Self {
            max_connections: http.max_connections.max(1),
            max_connections_per_ip: http.max_connections_per_ip.max(1),
            header_timeout: Duration::from_millis(http.header_timeout_ms),
            idle_timeout: Duration::from_millis(http.idle_timeout_ms),
            shutdown_grace: SHUTDOWN_GRACE,
            tls: None,
            stats,
        }
    }

    /// Serves HTTPS with `tls` (or plain HTTP with `None`).
    pub fn tls(mut self, tls: Option<Arc<Tls>>) -> Self {
        self.tls = tls;
        self
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight finish for
/// up to `opts.shutdown_grace` and returns.
///
/// Handlers see the client's address as `ConnectInfo<SocketAddr>`. Errors of single connections
/// and of `accept()` are logged and counted, never returned: the server runs until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    match raise_nofile_limit() {
        Ok((soft, _)) if soft < opts.max_connections as u64 + 256 => tracing::warn!(
            open_files = soft,
            max_connections = opts.max_connections,
            "the open-files limit is low for http.max_connections: raise LimitNOFILE (systemd) \
             or ulimit -n, or lower http.max_connections"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-files limit"),
    }
    let stats = opts.stats.clone();
    let admission = Arc::new(Admission::new(&opts));
    let conn = Arc::new(ConnOptions {
        app,
        header_timeout: opts.header_timeout,
        idle_timeout: opts.idle_timeout,
        tls: opts.tls.clone(),
        stats: stats.clone(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refusals = Every::new(LOG_EVERY);
    let mut accept_errors = Every::new(LOG_EVERY);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
                    match admission.admit(peer.ip()) {
                        Ok(slot) => {
                            stats.http.connections_accepted.fetch_add(1, Ordering::Relaxed);
                            tasks.spawn(connection(stream, peer, slot, conn.clone(), stop_rx.clone()));
                        }
                        Err(limit) => {
                            // Closed at once: dropping the socket sends FIN (RST if the client
                            // already sent data).
                            drop(stream);
                            stats.http.connections_refused.fetch_add(1, Ordering::Relaxed);
                            if let Some(more) = refusals.hit() {
                                tracing::warn!(
                                    peer = %peer.ip(),
                                    limit = limit.key(),
                                    value = limit.value(&opts),
                                    refused_since_last_line = more,
                                    "refusing HTTP connections: a connection limit is reached"
                                );
                            }
                        }
                    }
                }
                // The client gave up before we took its connection: nothing to do.
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    stats.http.accept_errors.fetch_add(1, Ordering::Relaxed);
                    if let Some(more) = accept_errors.hit() {
                        tracing::error!(
                            error = %e,
                            errors_since_last_line = more,
                            "cannot accept HTTP connections; retrying (out of file descriptors? \
                             raise LimitNOFILE or lower http.max_connections)"
                        );
                    }
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
            },
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let grace = tokio::time::timeout(opts.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if grace.is_err() {
        tracing::info!(
            connections = tasks.len(),
            grace_ms = opts.shutdown_grace.as_millis() as u64,
            "closing HTTP connections still busy after the shutdown grace period"
        );
        tasks.shutdown().await;
    }
    Ok(())
}

/// Raises this process's soft limit on open files (RLIMIT_NOFILE) to its hard limit and returns
/// the limits after (soft, hard). A service started with the common soft limit of 1024 would
/// otherwise run out of descriptors under a connection flood well before the caps refuse it.
/// [`serve`] calls it when it starts.
pub fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the struct we own and pass by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = if lim.rlim_max == libc::RLIM_INFINITY {
            // Linux refuses an infinite RLIMIT_NOFILE: the ceiling is fs.nr_open.
            std::fs::read_to_string("/proc/sys/fs/nr_open")
                .ok()
                .and_then(|s| s.trim().parse::<libc::rlim_t>().ok())
                .unwrap_or(1 << 20)
        } else {
            lim.rlim_max
        };
        let new = libc::rlimit {
            rlim_cur: want,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads one `rlimit` from the struct we own and pass by pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
            return Err(io::Error::last_os_error());
        }
        tracing::debug!(from = %lim.rlim_cur, to = %want, "raised the open-files limit");
        lim.rlim_cur = want;
    }
    #[allow(clippy::useless_conversion)] // rlim_t is u32 on some 32-bit targets
    Ok((u64::from(lim.rlim_cur), u64::from(lim.rlim_max)))
}

/// Errors of one connection that `accept()` reports: the client is gone, the server is fine.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// A log line at most once per period; counts what it held back.
#[derive(Debug)]
struct Every {
    period: Duration,
    last: Option<Instant>,
    held_back: u64,
}

impl Every {
    fn new(period: Duration) -> Self {
        Self {
            period,
            last: None,
            held_back: 0,
        }
    }

    /// `Some(events held back since the last line)` when a line may be logged now.
    fn hit(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(t) if now.duration_since(t) < self.period => {
                self.held_back += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held_back))
            }
        }
    }
}

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    Total,
    PerAddress,
}

impl Limit {
    fn key(self) -> &'static str {
        match self {
            Limit::Total => "http.max_connections",
            Limit::PerAddress => "http.max_connections_per_ip",
        }
    }

    fn value(self, o: &ServeOptions) -> usize {
        match self {
            Limit::Total => o.max_connections,
            Limit::PerAddress => o.max_connections_per_ip,
        }
    }
}

/// The connections open now, in total and per client address. The map holds only addresses
/// with a connection open, so it is bounded by `max_connections`.
#[derive(Debug)]
struct Admission {
    max_total: usize,
    max_per_address: usize,
    open: Mutex<Open>,
    stats: Arc<Stats>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it gives the slot back.
#[derive(Debug)]
struct Slot {
    admission: Arc<Admission>,
    key: Option<IpAddr>,
}

impl Admission {
    fn new(o: &ServeOptions) -> Self {
        Self {
            max_total: o.max_connections,
            max_per_address: o.max_connections_per_ip,
            open: Mutex::new(Open::default()),
            stats: o.stats.clone(),
        }
    }

    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Limit> {
        let key = address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.max_total {
            return Err(Limit::Total);
        }
        if let Some(k) = key {
            let n = open.per_address.entry(k).or_insert(0);
            if *n >= self.max_per_address {
                return Err(Limit::PerAddress);
            }
            *n += 1;
        }
        open.total += 1;
        self.stats
            .http
            .connections_open
            .store(open.total, Ordering::Relaxed);
        Ok(Slot {
            admission: self.clone(),
            key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let a = &self.admission;
        let mut open = a.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(k) = self.key
            && let Some(n) = open.per_address.get_mut(&k)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.per_address.remove(&k);
            }
        }
        a.stats
            .http
            .connections_open
            .store(open.total, Ordering::Relaxed);
    }
}

/// What every connection task needs.
#[derive(Debug)]
struct ConnOptions {
    app: Router,
    header_timeout: Duration,
    idle_timeout: Duration,
    tls: Option<Arc<Tls>>,
    stats: Arc<Stats>,
}

/// One connection: the TLS handshake if any, then HTTP/1.1 until the client leaves, a timeout
/// closes it, or a shutdown has let its request finish.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    o: Arc<ConnOptions>,
    mut stop: watch::Receiver<bool>,
) {
    let _slot = slot;
    let _ = stream.set_nodelay(true);
    let watch = Arc::new(Watch::new());
    let Some(tls) = &o.tls else {
        return drive(stream, peer, watch, &o, stop).await;
    };
    // The handshake counts against the first request's header time.
    let deadline = watch.base + o.header_timeout;
    let handshake = tokio::select! {
        r = tokio::time::timeout_at(deadline, tls.acceptor().accept(stream)) => r,
        _ = stop.changed() => return,
    };
    match handshake {
        Ok(Ok(stream)) => drive(stream, peer, watch, &o, stop).await,
        Ok(Err(e)) => {
            o.stats
                .http
                .tls_handshake_errors
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
        }
        Err(_) => {
            o.stats
                .http
                .connections_timed_out
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "TLS handshake not done within http.header_timeout_ms");
        }
    }
}

/// HTTP/1.1 on `io`, with the header and idle deadlines of [`Watch`].
async fn drive<I>(
    io: I,
    peer: SocketAddr,
    watch: Arc<Watch>,
    o: &ConnOptions,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = Handler {
        app: o.app.clone(),
        peer,
        watch: watch.clone(),
    };
    let io = TokioIo::new(Watched {
        inner: io,
        watch: watch.clone(),
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's own header timer restarts as soon as a response is written, so it would also
    // close idle kept-alive connections after the header timeout; [`Watch`] tells the two
    // apart.
    builder.header_read_timeout(None).keep_alive(true);
    let conn = builder.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        let deadline = watch.deadline(o.header_timeout, o.idle_timeout);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            () = watch.wake.notified() => {}
            () = sleep_until(deadline) => {
                if let Some((at, phase)) = watch.deadline(o.header_timeout, o.idle_timeout)
                    && at <= Instant::now()
                {
                    o.stats.http.connections_timed_out.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, phase = phase.name(), "closing a slow HTTP connection");
                    return;
                }
            }
            _ = stop.changed(), if !stopping => {
                // Closes the connection now if it is idle, else after the request in flight.
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<(Instant, Phase)>) {
    match deadline {
        Some((at, _)) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What a connection waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The rest of a request's headers.
    Headers,
    /// A next request on a kept-alive connection.
    Idle,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Headers => "headers (http.header_timeout_ms)",
            Phase::Idle => "idle (http.idle_timeout_ms)",
        }
    }
}

/// Which deadline applies to a connection. Times are milliseconds since `base` (the accept).
///
/// - A request in flight (headers in, response not yet handed to hyper): no deadline.
/// - Headers started (bytes read with no request in flight; from the accept for the first
///   request): `header_timeout` from then.
/// - Otherwise (between requests): `idle_timeout` from the end of the last one.
///
/// The connection's own task reads and writes it (the service future runs inside the
/// connection's future), so the atomics are for `Send`, not for contention.
#[derive(Debug)]
struct Watch {
    base: Instant,
    busy: AtomicUsize,
    /// When the headers being waited for started; `NONE` between requests.
    head_since: AtomicU64,
    /// When the last request ended.
    idle_since: AtomicU64,
    /// Wakes the connection's loop when the deadline changes.
    wake: Notify,
}

const NONE: u64 = u64::MAX;

impl Watch {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            busy: AtomicUsize::new(0),
            head_since: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            wake: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    /// Bytes arrived from the client.
    fn on_read(&self) {
        if self.busy.load(Ordering::Relaxed) == 0 && self.head_since.load(Ordering::Relaxed) == NONE
        {
            self.head_since.store(self.now_ms(), Ordering::Relaxed);
            self.wake.notify_one();
        }
    }

    /// hyper has a request's headers and calls the service.
    fn request_started(&self) {
        self.busy.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(NONE, Ordering::Relaxed);
    }

    /// The service answered (or its future was dropped).
    fn request_done(&self) {
        if self.busy.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.idle_since.store(self.now_ms(), Ordering::Relaxed);
            self.wake.notify_one();
        }
    }

    fn deadline(&self, header: Duration, idle: Duration) -> Option<(Instant, Phase)> {
        if self.busy.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let ms = |v: u64| self.base + Duration::from_millis(v);
        match self.head_since.load(Ordering::Relaxed) {
            NONE => Some((
                ms(self.idle_since.load(Ordering::Relaxed)) + idle,
                Phase::Idle,
            )),
            since => Some((ms(since) + header, Phase::Headers)),
        }
    }
}

/// The connection's stream, telling [`Watch`] when bytes arrive.
#[derive(Debug)]
struct Watched<I> {
    inner: I,
    watch: Arc<Watch>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.watch.on_read();
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The router as hyper's service for one connection: adds `ConnectInfo` and marks the request
/// in flight for [`Watch`].
#[derive(Debug, Clone)]
struct Handler {
    app: Router,
    peer: SocketAddr,
    watch: Arc<Watch>,
}

/// Marks a request in flight until dropped.
#[derive(Debug)]
struct InFlight(Arc<Watch>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_done();
    }
}

impl hyper::service::Service<hyper::Request<Incoming>> for Handler {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        self.watch.request_started();
        let in_flight = InFlight(self.watch.clone());
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let mut app = self.app.clone();
        Box::pin(async move {
            let resp = tower::Service::call(&mut app, req).await;
            drop(in_flight);
            resp
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::net::Ipv4Addr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn app() -> Router {
        Router::new()
            .route("/", get(|| async { "ok" }))
            .route(
                "/ip",
                get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                    peer.ip().to_string()
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "slow"
                }),
            )
            .route(
                "/forever",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    "never"
                }),
            )
    }

    fn options(stats: Arc<Stats>) -> ServeOptions {
        ServeOptions {
            max_connections: 8,
            max_connections_per_ip: 2,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_millis(500),
            tls: None,
            stats,
        }
    }

    /// A server on 127.0.0.1:0; returns its address, the stats, the shutdown trigger and the
    /// serve task.
    async fn start(
        opts: ServeOptions,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<io::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, app(), opts, async move {
            let _ = rx.await;
        }));
        (addr, tx, task)
    }

    /// A connection from `from` (bound before connecting).
    async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind(SocketAddr::new(IpAddr::V4(from), 0))
            .expect("bind the client address");
        sock.connect(to).await.expect("connect")
    }

    /// One GET on an open connection (kept alive); returns the body.
    async fn get_on(stream: &mut TcpStream, path: &str) -> io::Result<String> {
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
                .await
                .map_err(|_| io::Error::other("no answer within 5 s"))??;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                    return Ok(body.to_string());
                }
            }
        }
    }

    /// Waits until the peer closes `stream` (EOF or reset); returns how long that took.
    async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        let mut buf = [0u8; 64];
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => Some(t0.elapsed()),
            Ok(Ok(_)) => panic!("unexpected data from the server"),
            Err(_) => None,
        }
    }

    async fn wait_open(stats: &Stats, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while stats.http.connections_open.load(Ordering::Relaxed) != n {
            assert!(
                Instant::now() < deadline,
                "open connections: {} (want {n})",
                stats.http.connections_open.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn over_the_per_address_cap_is_closed_at_once_loopback_is_not_limited() {
        let stats = Arc::new(Stats::new());
        let (addr, stop, task) = start(options(stats.clone())).await;
        let other = Ipv4Addr::new(127, 0, 0, 2);
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(connect_from(other, addr).await);
        }
        wait_open(&stats, 2).await;
        let mut third = connect_from(other, addr).await;
        let took = closed_within(&mut third, Duration::from_secs(1))
            .await
            .expect("the third connection from 127.0.0.2 is closed at once");
        assert!(took < Duration::from_millis(500), "{took:?}");
        assert_eq!(stats.http.connections_refused.load(Ordering::Relaxed), 1);
        // The two held ones still work, and see their address.
        assert_eq!(
            get_on(&mut held[0], "/ip").await.expect("answer"),
            "127.0.0.2"
        );
        // 127.0.0.1: more connections than the per-address cap, all answered.
        let mut local = Vec::new();
        for _ in 0..4 {
            local.push(connect_from(Ipv4Addr::LOCALHOST, addr).await);
        }
        for s in &mut local {
            assert_eq!(get_on(s, "/ip").await.expect("answer"), "127.0.0.1");
        }
        // A slot is given back when its connection closes.
        drop(held.pop());
        wait_open(&stats, 5).await;
        let mut again = connect_from(other, addr).await;
        assert_eq!(get_on(&mut again, "/").await.expect("answer"), "ok");
        stop.send(()).expect("stop");
        task.await.expect("join").expect("serve");
    }

    #[tokio::test]
    async fn over_the_total_cap_is_closed_at_once() {
        let stats = Arc::new(Stats::new());
        let opts = ServeOptions {
            max_connections: 3,
            ..options(stats.clone())
        };
        let (addr, stop, task) = start(opts).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(connect_from(Ipv4Addr::LOCALHOST, addr).await);
        }
        wait_open(&stats, 3).await;
        let mut fourth = connect_from(Ipv4Addr::LOCALHOST, addr).await;
        assert!(
            closed_within(&mut fourth, Duration::from_secs(1))
                .await
                .is_some()
        );
        assert_eq!(get_on(&mut held[2], "/").await.expect("answer"), "ok");
        stop.send(()).expect("stop");
        task.await.expect("join").expect("serve");
    }

    #[tokio::test]
    async fn half_a_header_is_closed_after_the_header_timeout() {
        let stats = Arc::new(Stats::new());
        let opts = ServeOptions {
            header_timeout: Duration::from_millis(400),
            ..options(stats.clone())
        };
        let (addr, stop, task) = start(opts).await;
        let t0 = Instant::now();
        let mut s = connect_from(Ipv4Addr::LOCALHOST, addr).await;
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        // A byte every 100 ms: the connection is busy, but its headers never end.
        let mut closed = false;
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if s.write_all(b"X").await.is_err() {
                closed = true;
                break;
            }
            let mut buf = [0u8; 16];
            if let Ok(r) = tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
                assert!(!matches!(r, Ok(n) if n > 0), "unexpected answer");
                closed = true;
                break;
            }
        }
        let took = t0.elapsed();
        assert!(closed, "still open after {took:?}");
        assert!(
            took >= Duration::from_millis(350) && took < Duration::from_millis(1500),
            "{took:?}"
        );
        assert_eq!(stats.http.connections_timed_out.load(Ordering::Relaxed), 1);
        // A connection that sends nothing at all is closed too.
        let mut silent = connect_from(Ipv4Addr::LOCALHOST, addr).await;
        assert!(
            closed_within(&mut silent, Duration::from_secs(2))
                .await
                .is_some()
        );
        stop.send(()).expect("stop");
        task.await.expect("join").expect("serve");
    }

    #[tokio::test]
    async fn idle_keep_alive_lasts_the_idle_timeout_not_the_header_timeout() {
        let stats = Arc::new(Stats::new());
        let opts = ServeOptions {
            header_timeout: Duration::from_millis(200),
            idle_timeout: Duration::from_millis(900),
            ..options(stats.clone())
        };
        let (addr, stop, task) = start(opts).await;
        let mut s = connect_from(Ipv4Addr::LOCALHOST, addr).await;
        assert_eq!(get_on(&mut s, "/").await.expect("answer"), "ok");
        // Idle for longer than the header timeout: still open, the next request is answered.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(get_on(&mut s, "/").await.expect("answer"), "ok");
        // Then idle until the idle timeout closes it.
        let took = closed_within(&mut s, Duration::from_secs(3))
            .await
            .expect("closed when idle");
        assert!(
            took >= Duration::from_millis(800) && took < Duration::from_millis(1500),
            "{took:?}"
        );
        // A request in flight is not timed: /slow outlasts the header timeout.
        let mut s = connect_from(Ipv4Addr::LOCALHOST, addr).await;
        assert_eq!(get_on(&mut s, "/slow").await.expect("answer"), "slow");
        stop.send(()).expect("stop");
        task.await.expect("join").expect("serve");
    }

    #[tokio::test]
    async fn shutdown_lets_a_request_finish_then_drops_what_is_left() {
        let stats = Arc::new(Stats::new());
        let (addr, stop, task) = start(options(stats.clone())).await;
        let mut slow = connect_from(Ipv4Addr::LOCALHOST, addr).await;
        let mut forever = connect_from(Ipv4Addr::LOCALHOST, addr).await;
        let slow_answer = tokio::spawn(async move { get_on(&mut slow, "/slow").await });
        forever
            .write_all(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        wait_open(&stats, 2).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = Instant::now();
        stop.send(()).expect("stop");
        task.await.expect("join").expect("serve");
        let took = t0.elapsed();
        // The grace period (500 ms here) bounds the shutdown.
        assert!(took < Duration::from_millis(1500), "{took:?}");
        assert_eq!(slow_answer.await.expect("join").expect("answered"), "slow");
        assert!(
            closed_within(&mut forever, Duration::from_secs(1))
                .await
                .is_some()
        );
        // Nothing listens any more.
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_limit() {
        let (soft, hard) = raise_nofile_limit().expect("getrlimit");
        assert!(soft <= hard);
        let (soft2, _) = raise_nofile_limit().expect("again");
        assert_eq!(soft, soft2);
    }

    mod tls {
        use super::*;
        use crate::http::tls::tests::{self_signed, write_pair};
        use rustls_pki_types::ServerName;

        /// A TLS client that trusts exactly `der`.
        fn connector(der: &[u8]) -> tokio_rustls::TlsConnector {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(rustls_pki_types::CertificateDer::from(der.to_vec()))
                .expect("add root");
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            tokio_rustls::TlsConnector::from(Arc::new(config))
        }

        async fn https_get(
            addr: SocketAddr,
            trust: &[u8],
        ) -> io::Result<(String, Vec<u8>, tokio_rustls::client::TlsStream<TcpStream>)> {
            let tcp = TcpStream::connect(addr).await?;
            let mut s = connector(trust)
                .connect(ServerName::try_from("localhost").expect("name"), tcp)
                .await?;
            let served = s
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.as_ref().to_vec())
                .unwrap_or_default();
            s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await?;
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await?;
            Ok((String::from_utf8_lossy(&buf[..n]).to_string(), served, s))
        }

        #[tokio::test]
        async fn https_serves_and_a_reload_reaches_new_connections_only() {
            let dir = tempfile::tempdir().expect("tempdir");
            let (cert, key, der) = self_signed();
            let (c, k) = write_pair(dir.path(), &cert, &key);
            let tls = Arc::new(Tls::load(&c, &k).expect("load"));
            let stats = Arc::new(Stats::new());
            let opts = options(stats.clone()).tls(Some(tls.clone()));
            let (addr, stop, task) = start(opts).await;
            let (answer, served, mut old) = https_get(addr, &der).await.expect("https");
            assert!(
                answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"),
                "{answer}"
            );
            assert_eq!(served, der);
            // Plain HTTP on the HTTPS port gets no answer.
            let mut plain = TcpStream::connect(addr).await.expect("connect");
            plain
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .expect("write");
            let mut buf = [0u8; 64];
            let n = plain.read(&mut buf).await.unwrap_or(0);
            assert!(!String::from_utf8_lossy(&buf[..n]).contains("200"));
            // A new pair, then reload: new connections see it, the old one keeps working.
            let (cert2, key2, der2) = self_signed();
            write_pair(dir.path(), &cert2, &key2);
            tls.reload().expect("reload");
            let (_, served2, _) = https_get(addr, &der2).await.expect("https after reload");
            assert_eq!(served2, der2);
            assert!(
                https_get(addr, &der).await.is_err(),
                "the old certificate is gone"
            );
            old.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await
                .expect("write on the old connection");
            let n = old
                .read(&mut buf)
                .await
                .expect("read on the old connection");
            assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
            stop.send(()).expect("stop");
            task.await.expect("join").expect("serve");
        }

        #[tokio::test]
        async fn the_handshake_is_bounded_by_the_header_timeout() {
            let dir = tempfile::tempdir().expect("tempdir");
            let (cert, key, _) = self_signed();
            let (c, k) = write_pair(dir.path(), &cert, &key);
            let tls = Arc::new(Tls::load(&c, &k).expect("load"));
            let stats = Arc::new(Stats::new());
            let opts = ServeOptions {
                header_timeout: Duration::from_millis(300),
                ..options(stats.clone())
            }
            .tls(Some(tls));
            let (addr, stop, task) = start(opts).await;
            // Half a ClientHello record header, then nothing.
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.write_all(&[0x16, 0x03, 0x01]).await.expect("write");
            let took = closed_within(&mut s, Duration::from_secs(2))
                .await
                .expect("closed");
            assert!(took < Duration::from_millis(1000), "{took:?}");
            assert_eq!(stats.http.connections_timed_out.load(Ordering::Relaxed), 1);
            stop.send(()).expect("stop");
            task.await.expect("join").expect("serve");
        }
    }
}
