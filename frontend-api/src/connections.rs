//! How the API accepts and keeps connections: a cap in all and per peer, timeouts for headers
//! and idleness, and deadlines that a transfer's connection is closed at.
//!
//! Every connection holds a slot (`--max-connections`, under the process's open-file limit) and
//! one of its peer's share (`--connections-per-address`; a peer is an IPv4 address or an IPv6
//! /64, [`peer_key`]). A connection with no request in progress (an answer's body counts until
//! it is sent or dropped) for the header timeout is closed, HTTP/2 included, whose client's
//! pings would keep it for ever. A request may give its connection a deadline
//! ([`Deadlines`], in the request's extensions): once it passes with the request still in
//! progress, the connection is closed, whatever the client reads or does not (a download whose
//! reader stopped reading holds no turn past its deadline).

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// How connections are accepted and kept.
#[derive(Debug, Clone, Copy)]
pub struct Connections {
    /// Most served at once.
    pub max: usize,
    /// Most open at once from one peer address ([`peer_key`]).
    pub per_address: usize,
    /// To finish a TLS handshake, to send a request's headers, and to stay idle between
    /// requests (HTTP/1.1 keep-alive, and HTTP/2 with no stream open).
    pub header_timeout: Duration,
}

/// Files the API keeps open besides its connections and its checks' children: the vault's and
/// the audit log's, the node's WebSocket, the runtime's own.
const FILES_BESIDES_CONNECTIONS: usize = 64;

/// Files each check in progress holds: its child's three pipes, and a margin.
const FILES_PER_CHECK: usize = 4;

/// Raise this process's soft open-file limit to its hard limit; returns the soft limit then in
/// force (`usize::MAX` if it cannot be read).
pub fn raise_open_files() -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `getrlimit` and `setrlimit` read or write the struct they are given and nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return usize::MAX;
        }
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            limit = raised;
        }
    }
    usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
}

/// The connection cap under an open-file limit of `open_files` with `checks` checks at once:
/// `wanted`, or fewer when the limit would be reached first (an `accept` that fails for want of
/// a file waits and tries again).
pub fn connection_cap(wanted: usize, checks: usize, open_files: usize) -> usize {
    let reserved = FILES_BESIDES_CONNECTIONS.saturating_add(checks.saturating_mul(FILES_PER_CHECK));
    let fits = open_files.saturating_sub(reserved).max(1);
    if wanted > fits {
        tracing::warn!(wanted, fits, open_files, "the open-file limit lowers the connection cap: raise `ulimit -n`");
    }
    wanted.min(fits)
}

/// What connections from one peer are counted under: its IPv4 address, or its IPv6 address's
/// /64 (one host is handed a whole /64, and picks any address in it).
pub fn peer_key(ip: IpAddr) -> IpAddr {
    use std::net::Ipv6Addr;
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

/// What is open per peer ([`peer_key`]): connections, event streams.
pub type OpenPerPeer = crate::turns::Counts<IpAddr>;

/// One thing counted for its peer until dropped.
pub type PeerConnection = crate::turns::Counted<IpAddr>;

/// Serve `app` until `shutdown`, over TLS when `tls` is given: each connection on its own task,
/// at most `connections.max` at once (the next is accepted when one closes), with the peer's
/// address in its requests' extensions (the per-address rate limit reads it): HTTP/1.1, or
/// HTTP/2 when TLS negotiated it (ALPN); plain HTTP/2 without TLS is not served, since telling
/// it apart means waiting for a client's first bytes with no deadline. At shutdown it stops accepting, asks open connections to finish their requests and
/// waits up to 10 s for them.
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: axum::Router,
    connections: Connections,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(tokio::sync::Semaphore::new(connections.max));
    let peers = Arc::new(OpenPerPeer::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = async {
                let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
                (listener.accept().await, permit)
            } => accepted,
            () = &mut shutdown => break,
        };
        let ((tcp, peer), permit) = match accepted {
            (Ok(accepted), permit) => (accepted, permit),
            (Err(e), _) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(counted) = peers.open(peer_key(peer.ip()), connections.per_address) else {
            tracing::debug!(%peer, "closed: the peer has its share of connections open");
            continue;
        };
        let (tls, app, watcher) = (tls.clone(), app.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _held = (permit, counted);
            match tls {
                None => serve_connection(tcp, false, peer, app, connections, watcher).await,
                Some(acceptor) => match tokio::time::timeout(connections.header_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                        serve_connection(stream, h2, peer, app, connections, watcher).await
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake: {e}"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open 10 s after shutdown: closing them");
    }
    Ok(())
}

/// Serve one connection's requests, HTTP/2 when `h2`, else HTTP/1.1: headers within the
/// timeout, the peer's address and the connection's [`Deadlines`] attached. Closed when no request
/// has been in progress for the header timeout, or when a request's deadline passes with it
/// still in progress.
async fn serve_connection<S>(
    stream: S,
    h2: bool,
    peer: SocketAddr,
    app: axum::Router,
    connections: Connections,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::Service;
    let activity = Arc::new(Activity::new());
    let service = hyper::service::service_fn({
        let activity = activity.clone();
        move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            request.extensions_mut().insert(Deadlines(activity.clone()));
            let busy = activity.start();
            let answer = app.clone().call(request.map(axum::body::Body::new));
            async move {
                answer.await.map(|response| response.map(|body| axum::body::Body::new(Tracked { body, _busy: busy })))
            }
        }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let mut builder = if h2 { builder.http2_only() } else { builder.http1_only() };
    builder.http1().timer(TokioTimer::new()).header_read_timeout(connections.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .keep_alive_interval(connections.header_timeout)
        .keep_alive_timeout(connections.header_timeout);
    let connection = watcher.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned());
    tokio::pin!(connection);
    let tick = connections.header_timeout.min(Duration::from_secs(1));
    loop {
        // The connection first: a request that has just arrived is counted before idleness is.
        tokio::select! {
            biased;
            served = &mut connection => {
                if let Err(e) = served {
                    tracing::debug!(%peer, "connection: {e}");
                }
                return;
            }
            () = tokio::time::sleep(tick) => match activity.verdict(connections.header_timeout) {
                Verdict::Keep => {}
                Verdict::Idle => {
                    tracing::debug!(%peer, "closed an idle connection");
                    return;
                }
                Verdict::Overdue => {
                    tracing::debug!(%peer, "closed a connection past its request's deadline");
                    return;
                }
            },
        }
    }
}

/// Requests in progress on one connection, when the last one ended, and the deadlines its
/// requests set.
struct Activity {
    busy: std::sync::atomic::AtomicUsize,
    since: Mutex<Instant>,
    deadlines: Mutex<Vec<(u64, Instant)>>,
    next: std::sync::atomic::AtomicU64,
}

/// What becomes of a connection, on a look at its [`Activity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Keep,
    /// No request in progress for the idle time.
    Idle,
    /// A request's deadline has passed, the request still in progress.
    Overdue,
}

/// One request in progress, until its answer's body is done or dropped.
struct Busy(Arc<Activity>);

impl Activity {
    fn new() -> Self {
        Self {
            busy: std::sync::atomic::AtomicUsize::new(0),
            since: Mutex::new(Instant::now()),
            deadlines: Mutex::default(),
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn start(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Busy(self.clone())
    }

    /// Whether to keep the connection, idle for `idle` or more, or past a deadline.
    fn verdict(&self, idle: Duration) -> Verdict {
        let now = Instant::now();
        let deadlines = self.deadlines.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if deadlines.iter().any(|(_, at)| *at <= now) {
            return Verdict::Overdue;
        }
        let since = *self.since.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.busy.load(std::sync::atomic::Ordering::SeqCst) == 0 && now.duration_since(since) >= idle {
            return Verdict::Idle;
        }
        Verdict::Keep
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.since.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        self.0.busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A request's handle on its connection's deadlines (in the request's extensions).
#[derive(Clone)]
pub struct Deadlines(Arc<Activity>);

/// A deadline set on a connection; dropping it (the transfer done) lifts it.
pub struct Deadline {
    activity: Arc<Activity>,
    id: u64,
}

impl Deadlines {
    /// Close the connection if what the returned [`Deadline`] guards is still going after
    /// `within`.
    pub fn set(&self, within: Duration) -> Deadline {
        let id = self.0.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let at = Instant::now() + within;
        self.0.deadlines.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((id, at));
        Deadline { activity: self.0.clone(), id }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        let mut deadlines = self.activity.deadlines.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        deadlines.retain(|(id, _)| *id != self.id);
    }
}

/// An answer's body that keeps its request counted as in progress until it is done or dropped.
struct Tracked {
    body: axum::body::Body,
    _busy: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_host_is_one_peer_whatever_address_of_its_64_it_picks() {
        let key = |text: &str| peer_key(text.parse::<IpAddr>().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        // IPv4, bare or mapped, is one peer per address.
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
    }

    #[test]
    fn a_peer_opens_at_most_its_share_and_gets_it_back_as_they_close() {
        let peers = Arc::new(OpenPerPeer::default());
        let (a, b) = ("192.0.2.7".parse().unwrap(), "192.0.2.8".parse().unwrap());
        let first = peers.open(a, 2).unwrap();
        let second = peers.open(a, 2).unwrap();
        assert!(peers.open(a, 2).is_none());
        assert!(peers.open(b, 2).is_some(), "another peer");
        drop(first);
        let third = peers.open(a, 2).unwrap();
        drop((second, third));
        assert!(peers.is_empty());
    }

    #[test]
    fn the_connection_cap_stays_under_the_open_file_limit() {
        assert_eq!(connection_cap(1024, 0, 1024), 1024 - FILES_BESIDES_CONNECTIONS);
        assert_eq!(connection_cap(1024, 64, 1024), 1024 - FILES_BESIDES_CONNECTIONS - 64 * FILES_PER_CHECK);
        assert_eq!(connection_cap(1024, 2, 1 << 20), 1024);
        assert_eq!(connection_cap(1024, 2, 10), 1);
        assert!(raise_open_files() >= 1024);
    }

    #[tokio::test]
    async fn a_connection_is_idle_only_with_no_request_nor_answer_in_progress() {
        let idle = Duration::from_millis(10);
        let activity = Arc::new(Activity::new());
        let busy = activity.start();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(activity.verdict(idle), Verdict::Keep, "an answer still streaming");
        drop(busy);
        assert_eq!(activity.verdict(idle), Verdict::Keep, "idle counts from the last answer's end");
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(activity.verdict(idle), Verdict::Idle);
    }

    #[tokio::test]
    async fn a_request_past_its_deadline_closes_its_connection_however_busy() {
        let activity = Arc::new(Activity::new());
        let deadlines = Deadlines(activity.clone());
        let _busy = activity.start();
        let deadline = deadlines.set(Duration::from_millis(20));
        let later = deadlines.set(Duration::from_secs(60));
        assert_eq!(activity.verdict(Duration::from_secs(60)), Verdict::Keep);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(activity.verdict(Duration::from_secs(60)), Verdict::Overdue);
        // Done in time, it lifts its deadline.
        drop(deadline);
        assert_eq!(activity.verdict(Duration::from_secs(60)), Verdict::Keep);
        drop(later);
        assert!(activity.deadlines.lock().unwrap().is_empty());
    }
}
