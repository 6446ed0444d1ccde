//! The composition root (top layer, above `management`): starting and
//! stopping the shards and the management server: one glommio executor per shard, pinned
//! to a core; each binds the listening port, and the amqps port when TLS
//! is configured (SO_REUSEPORT, so the kernel spreads connections), joins
//! the mesh and serves. The main thread waits
//! for SIGINT/SIGTERM and then has every shard close its connections with
//! 320 CONNECTION_FORCED and then, once every shard has closed its
//! connections, flush, fsync and close its log (bounded in time).

use crate::connection::tls_config::TlsContext;
use crate::shard::mesh::{receiver_streams, Batch, Mesh, RING_CAPACITY};
use crate::shard::preempt_guard::PreemptGuard;
use crate::shard::ticker::Ticker;
use crate::shard::watchdog::Watchdog;
use crate::shard::{Settings, Shard};
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Registered DMA memory per executor (see the builder call).
const IO_MEMORY: usize = 1 << 20;

/// The longest a shard runs tasks before it polls I/O again.
const PREEMPT_EVERY: Duration = Duration::from_millis(5);

/// How long an idle shard spins before it parks in the kernel. Measured
/// against 10 and 25 µs (2 shards, 2 cores): shorter spins cut the CPU of a
/// fixed 10 k msg/s load (1.2 vs 1.4 cores) but halve persistent-confirms
/// throughput (the fsync completions then wake a parked executor).
const SPIN_BEFORE_PARK: Duration = Duration::from_micros(50);

/// The spin before parking: `WARREN_SPIN_BEFORE_PARK_US` when set (see
/// `parse_spin`), else `SPIN_BEFORE_PARK`; for A/B runs of the low-rate cost.
fn spin_before_park() -> Duration {
    let value = std::env::var("WARREN_SPIN_BEFORE_PARK_US").ok();
    parse_spin(value.as_deref()).unwrap_or_else(|bad| {
        tracing::warn!("WARREN_SPIN_BEFORE_PARK_US={bad:?} is not 0..=1000 (µs): using 50");
        SPIN_BEFORE_PARK
    })
}

/// Microseconds, 0 to 1000 (none: `SPIN_BEFORE_PARK`); else the bad value.
fn parse_spin(value: Option<&str>) -> Result<Duration, String> {
    match value {
        None => Ok(SPIN_BEFORE_PARK),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(us) if us <= 1000 => Ok(Duration::from_micros(us)),
            _ => Err(v.to_string()),
        },
    }
}

/// Runs the broker until SIGINT or SIGTERM. Returns once every shard has
/// closed its connections.
pub fn run(settings: Settings) -> io::Result<()> {
    assert!(
        settings.shards >= 1 && settings.shards <= 1024,
        "shard count out of range"
    );
    block_termination_signals();
    check_ports_free(&settings)?;
    let shards = settings.shards;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mesh = (shards > 1).then(|| MeshBuilder::<Batch, _>::full(shards, RING_CAPACITY));
    let shutdown = Arc::new(AtomicBool::new(false));
    // Shards done closing their connections (the logs close after all are).
    let quiesced = Arc::new(AtomicUsize::new(0));
    let alarms =
        crate::shard::alarms::start_monitor(settings.limits.clone(), settings.data_dir.clone());
    let watchdog = Watchdog::start(shards);
    let spin = spin_before_park();
    let connection_slots = Arc::new(crate::shard::connection_slots::ConnectionSlots::default());
    // The certificates are read once here (a bad file stops the start) and
    // again on `warren ctl reload_tls`.
    let tls = match settings.tls.clone() {
        Some(options) => Some(Arc::new(
            TlsContext::new(options).map_err(io::Error::other)?,
        )),
        None => None,
    };
    // The management server's port is bound before any shard starts, so a
    // taken port is reported at once; shard 0 serves its bridge.
    let management = match settings.management_port {
        Some(p) => Some((
            std::net::TcpListener::bind((settings.management_bind.as_str(), p))
                .map_err(|e| management_bind_error(&settings.management_bind, p, e))?,
            crate::management::bridge::channel(),
        )),
        None => None,
    };
    let mut bridge_rx = management.as_ref().map(|(_, (_, rx))| rx.clone());

    // Shard 0 binds first (it resolves --port 0); the others bind the same port.
    let mut handles = Vec::with_capacity(shards);
    let mut bound_port = settings.port;
    let mut bound_tls_port = settings.tls.as_ref().map(|t| t.port);
    for id in 0..shards {
        let mut settings = settings.clone();
        settings.port = bound_port;
        if let (Some(t), Some(p)) = (settings.tls.as_mut(), bound_tls_port) {
            t.port = p;
        }
        let tls = tls.clone();
        let mesh = mesh.clone();
        let shutdown = shutdown.clone();
        let quiesced = quiesced.clone();
        // One channel per shard: if its executor dies while starting, the
        // sender is dropped and the wait below says so at once.
        let (port_tx, port_rx) = mpsc::channel::<io::Result<(u16, Option<u16>)>>();
        let bridge = bridge_rx.take();
        let alarms = alarms.clone();
        let watchdog = watchdog.clone();
        let connection_slots = connection_slots.clone();
        let handle = LocalExecutorBuilder::new(Placement::Fixed(id % cpus))
            .name(&format!("shard-{id}"))
            // glommio polls I/O only between task-queue runs; a busy queue
            // runs until this timer preempts it, so it bounds how long a
            // flooding publisher can keep other sockets and the rings waiting.
            .preempt_timer(PREEMPT_EVERY)
            .spin_before_park(spin)
            // glommio registers (and so pins) 10 MiB of DMA memory per
            // executor by default; the log's batches fall back to ordinary
            // aligned allocations beyond this, so keep the idle footprint small.
            .io_memory(IO_MEMORY)
            .spawn(move || async move {
                trace(id, "starting: executor up, recovering");
                let ticker = Rc::new(Ticker::default());
                // First: from here on no preemption can park this executor
                // with runnable tasks (glommio 0.9's lost wake-up).
                let idle_tick = {
                    let (ticker, watchdog, shutdown) =
                        (ticker.clone(), watchdog.clone(), shutdown.clone());
                    Box::new(move || tick_once(&ticker, &watchdog, id, &shutdown))
                };
                glommio::spawn_local(PreemptGuard::new(PREEMPT_EVERY, ticker.clone(), idle_tick))
                    .detach();
                for phase in [false, true] {
                    let (ticker, watchdog, shutdown) =
                        (ticker.clone(), watchdog.clone(), shutdown.clone());
                    glommio::spawn_local(tick(ticker, watchdog, shutdown, id, phase)).detach();
                }
                let _watched = watchdog.register(id);
                let recovered = match crate::shard::durability::recover(
                    &settings,
                    id as u16,
                    alarms.log_space_counter(),
                )
                .await
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = port_tx.send(Err(io::Error::other(format!(
                            "shard {id} recovery failed: {e}"
                        ))));
                        return;
                    }
                };
                if recovered.messages > 0 || !recovered.queues.is_empty() {
                    tracing::info!(
                        shard = id,
                        "recovered {} durable queues, {} messages",
                        recovered.queues.len(),
                        recovered.messages
                    );
                }
                trace(id, "starting: recovered, binding");
                let listener = match TcpListener::bind((settings.bind.as_str(), settings.port)) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = port_tx.send(Err(io::Error::other(format!(
                            "cannot listen on {}:{}: {e}",
                            settings.bind, settings.port
                        ))));
                        return;
                    }
                };
                let port = listener
                    .local_addr()
                    .map(|a| a.port())
                    .unwrap_or(settings.port);
                let tls_listener = match settings.tls.as_ref().map(|t| t.port) {
                    Some(p) => match TcpListener::bind((settings.bind.as_str(), p)) {
                        Ok(l) => Some(l),
                        Err(e) => {
                            let _ = port_tx.send(Err(io::Error::other(format!(
                                "cannot listen for amqps on {}:{p}: {e}",
                                settings.bind
                            ))));
                            return;
                        }
                    },
                    None => None,
                };
                let tls_port = tls_listener
                    .as_ref()
                    .and_then(|l| l.local_addr().ok())
                    .map(|a| a.port());
                let _ = port_tx.send(Ok((port, tls_port)));
                shard_main(
                    ticker,
                    ShardStart {
                        id,
                        settings,
                        mesh,
                        listener,
                        tls: tls_listener.zip(tls),
                        quiesced,
                        recovered,
                        alarms,
                        bridge,
                        watchdog,
                        connection_slots,
                    },
                )
                .await;
            })
            .map_err(|e| io::Error::other(e.to_string()))?;
        handles.push(handle);
        let (port, tls_port) =
            port_rx
                .recv_timeout(Duration::from_secs(120))
                .map_err(|e| match e {
                    mpsc::RecvTimeoutError::Timeout => {
                        io::Error::other(format!("shard {id} did not start within 120 s"))
                    }
                    mpsc::RecvTimeoutError::Disconnected => io::Error::other(format!(
                        "shard {id}'s executor stopped while starting (glommio could not \
                     set it up: io_uring or locked-memory limits?)"
                    )),
                })??;
        bound_port = port;
        bound_tls_port = tls_port;
    }
    if let Some(p) = bound_tls_port {
        eprintln!("warren: amqps (TLS) on {}:{p}", settings.bind);
    }
    if let Some((listener, (bridge, _))) = management {
        let addr = listener.local_addr()?;
        let p = addr.port();
        crate::management::start(
            listener,
            crate::management::Context {
                bridge,
                alarms: alarms.clone(),
                node: crate::management::api::Node {
                    name: settings.node_name.clone(),
                    amqp_bind: settings.bind.clone(),
                    amqp_port: bound_port,
                    management_port: p,
                    data_dir: settings.data_dir.clone(),
                    started: std::time::Instant::now(),
                },
                loopback_users: settings.loopback_users.clone(),
                rates: Default::default(),
            },
        )?;
        // warren ctl talks to a loopback address (its requests are served
        // to loopback peers only).
        let ctl = if addr.ip().is_unspecified() || addr.ip().is_loopback() {
            format!("127.0.0.1:{p}")
        } else {
            addr.to_string()
        };
        eprintln!(
            "warren: management API on http://{addr}/api/ and admin endpoint on {ctl} (warren ctl --admin {ctl} list_queues)"
        );
    }
    eprintln!(
        "warren: listening on {}:{} (shards: {})",
        settings.bind, bound_port, shards
    );
    wait_for_termination_signal();
    eprintln!("warren: shutting down");
    shutdown.store(true, Ordering::SeqCst);
    for h in handles {
        let _ = h.join();
    }
    let stalls = watchdog.totals();
    tracing::info!(
        watchdog_fires = stalls.fires,
        parked_fires = stalls.parked,
        startup_fires = stalls.startup,
        starved_windows = stalls.starved,
        "watchdog: woke a stalled shard {} times while serving ({} parked in the kernel, \
         the rest running), {} while starting; {} quiet spells were waits for a CPU",
        stalls.fires,
        stalls.parked,
        stalls.startup,
        stalls.starved
    );
    eprintln!("warren: stopped");
    Ok(())
}

/// Fails when a fixed port Warren is to serve (AMQP, management) already has a
/// listener. The shards bind with SO_REUSEPORT, which another process of the
/// same user (say, a second Warren) could share with them silently, so the
/// kernel's listening sockets are checked first. (A plain test bind would
/// also trip over the TIME_WAIT sockets of a Warren that just stopped.)
fn check_ports_free(settings: &Settings) -> io::Result<()> {
    let ours: Option<std::net::IpAddr> = settings.bind.parse().ok();
    if settings.port != 0 && listening_on(ours, settings.port) {
        return Err(io::Error::other(format!(
            "cannot listen on {}:{}: another process is listening on that port",
            settings.bind, settings.port
        )));
    }
    if let Some(p) = settings.tls.as_ref().map(|t| t.port).filter(|&p| p != 0) {
        if listening_on(ours, p) {
            return Err(io::Error::other(format!(
                "cannot listen for amqps on {}:{p}: another process is listening on that port",
                settings.bind
            )));
        }
    }
    if let Some(p) = settings.management_port.filter(|&p| p != 0) {
        if listening_on(settings.management_bind.parse().ok(), p) {
            return Err(management_bind_error(
                &settings.management_bind,
                p,
                io::Error::other("another process is listening on that port"),
            ));
        }
    }
    Ok(())
}

/// Whether a TCP socket of this network namespace listens on `port` at an
/// address overlapping `ours` (`None`: a host name, checked on every address).
fn listening_on(ours: Option<std::net::IpAddr>, port: u16) -> bool {
    let want_port = format!("{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|file| {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        text.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(&"0A")) = (fields.get(1), fields.get(3)) else {
                return false;
            };
            let Some((addr, p)) = local.split_once(':') else {
                return false;
            };
            if p != want_port {
                return false;
            }
            match (ours, proc_net_addr(addr)) {
                (Some(ours), Some(theirs)) => {
                    ours.is_unspecified() || theirs.is_unspecified() || same_ip(ours, theirs)
                }
                _ => true,
            }
        })
    })
}

/// An address as /proc/net/tcp{,6} prints it: 32-bit words in host order.
fn proc_net_addr(hex: &str) -> Option<std::net::IpAddr> {
    let mut bytes = Vec::with_capacity(16);
    for i in (0..hex.len()).step_by(8) {
        let word = u32::from_str_radix(hex.get(i..i + 8)?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    match bytes.len() {
        4 => Some(std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).into()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).into()),
        _ => None,
    }
}

fn same_ip(a: std::net::IpAddr, b: std::net::IpAddr) -> bool {
    let canon = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, Into::into),
        v4 => v4,
    };
    canon(a) == canon(b)
}

fn management_bind_error(bind: &str, port: u16, e: io::Error) -> io::Error {
    io::Error::other(format!(
        "cannot listen for the management API on {bind}:{port}: {e} \
         (--management-port PORT picks another port, --management-port off disables it)"
    ))
}

/// Everything a shard's executor starts with.
struct ShardStart {
    id: usize,
    settings: Settings,
    mesh: Option<MeshBuilder<Batch, glommio::channels::channel_mesh::Full>>,
    listener: TcpListener,
    /// The amqps listener and what its connections share.
    tls: Option<(TcpListener, Arc<TlsContext>)>,
    /// Shards that closed their connections at shutdown.
    quiesced: Arc<AtomicUsize>,
    recovered: crate::shard::durability::Recovered,
    alarms: Arc<crate::shard::alarms::Alarms>,
    /// Shard 0's end of the management server's bridge.
    bridge: Option<async_channel::Receiver<crate::management::bridge::Job>>,
    watchdog: Arc<Watchdog>,
    /// Connections per vhost, shared by every shard.
    connection_slots: Arc<crate::shard::connection_slots::ConnectionSlots>,
}

/// glommio notices some completions (file operations done by its helper
/// thread, a shared channel's peer connecting) only when the executor polls
/// I/O, and a parked executor is not always woken for them: without a timer
/// a shard's startup could hang forever in the mesh join or in recovery. A
/// ticking timer keeps every shard polling: fast while it starts, slowly
/// (a bound on any such stall) once it serves.
///
/// Two tickers run, the second (`late`) half a period behind the first.
/// They were the bound on glommio 0.9's lost wake-up (a ticker whose timer
/// just fired has none registered until it runs again; the other one's
/// still is); `shard::preempt_guard` now keeps that park from happening,
/// and the tickers beat the watchdog.
///
/// How fast they tick (fast while starting or working, slowly when idle)
/// is `shard::ticker`'s.
async fn tick(
    ticker: Rc<Ticker>,
    watchdog: Arc<Watchdog>,
    shutdown: Arc<AtomicBool>,
    id: usize,
    late: bool,
) {
    if late {
        glommio::timer::sleep(ticker.period() / 2).await;
    }
    loop {
        let woken = ticker.sleep().await;
        tick_once(&ticker, &watchdog, id, &shutdown);
        if woken && late {
            // Back to half a period behind the other ticker.
            glommio::timer::sleep(ticker.period() / 2).await;
        }
    }
}

/// What every tick does, a ticker's or (while the shard is idle) a tooth
/// of the preemption guard's comb: the watchdog's heartbeat, the ticker's
/// count, and a look at the shutdown flag.
fn tick_once(ticker: &Ticker, watchdog: &Watchdog, id: usize, shutdown: &AtomicBool) {
    watchdog.beat(id);
    ticker.ticked();
    if shutdown.load(Ordering::SeqCst) {
        ticker.request_stop();
    }
}

/// How often a shard looks for a log segment worth compacting.
const COMPACT_EVERY: Duration = Duration::from_millis(500);

async fn shard_main(ticker: Rc<Ticker>, start: ShardStart) {
    let ShardStart {
        id,
        settings,
        mesh,
        listener,
        tls,
        quiesced,
        recovered,
        alarms,
        bridge,
        watchdog,
        connection_slots,
    } = start;
    let shards = settings.shards;
    trace(id, "starting: joining the mesh");
    let (senders, receivers) = match mesh {
        Some(m) => {
            let (s, r) = m.join().await.expect("join the shard mesh");
            trace(id, "starting: joined the mesh");
            assert_eq!(s.peer_id(), id, "mesh peer ids follow shard ids");
            (Some(s), Some(r))
        }
        None => (None, None),
    };
    let mesh = Rc::new(Mesh::new(id, shards, senders));
    let crate::shard::durability::Recovered {
        log,
        metadata,
        queues,
        delayed,
        ..
    } = recovered;
    let shard = Rc::new(Shard::new(
        id as u16,
        settings,
        mesh,
        metadata,
        Some(log),
        alarms,
        connection_slots,
        ticker.clone(),
    ));
    shard.watchdog.replace(Some(watchdog.clone()));
    for (name, (config, head, tail, max_seen_id)) in queues {
        let mut q = crate::broker::queue::Queue::new(name.name.clone(), config);
        shard.tracked(&mut q, |q| q.restore(head, tail, max_seen_id));
        q.restored_at(crate::shard::stats::coarse_now_ms());
        let key = shard
            .meta
            .borrow()
            .queues
            .key(&name)
            .expect("a recovered queue is in the recovered catalog");
        shard.queues.borrow_mut().insert(key, Box::new(q));
        crate::shard::policies::apply_to_queue(&shard, &name);
        crate::shard::expiry::start(&shard, &name);
    }
    if let Some(receivers) = receivers {
        for (peer, rx) in receiver_streams(receivers) {
            let shard = shard.clone();
            glommio::spawn_local(async move {
                while let Some(batch) = rx.recv().await {
                    shard.mesh.note_received(peer);
                    shard.handle_batch(batch);
                    shard.wait_for_log_space().await;
                    glommio::executor().yield_task_queue_now().await;
                }
                let _ = peer;
            })
            .detach();
        }
    }
    shard.delayed.restore(delayed);
    glommio::spawn_local(crate::shard::delayed::run(shard.clone())).detach();
    ticker.serving();
    watchdog.serving(id);
    let compactor = shard.clone();
    glommio::spawn_local(async move {
        while !compactor.shutting_down.get() {
            glommio::timer::sleep(COMPACT_EVERY).await;
            if crate::shard::durability::compact(&compactor) {
                compactor.pump();
            }
        }
    })
    .detach();
    let tls_context = tls.as_ref().map(|(_, c)| c.clone());
    let bridge_task = bridge.map(|rx| {
        glommio::spawn_local(crate::management::bridge::serve(
            shard.clone(),
            rx,
            tls_context.clone(),
        ))
    });
    let tls_acceptor = tls.map(|(listener, context)| {
        let shard = shard.clone();
        glommio::spawn_local(accept_loop(listener, shard.id, "amqps", move |stream| {
            crate::connection::serve_tls(shard.clone(), stream, context.clone())
        }))
    });
    let accept_shard = shard.clone();
    let acceptor = glommio::spawn_local(accept_loop(listener, shard.id, "amqp", move |stream| {
        crate::connection::serve(accept_shard.clone(), stream)
    }));
    // The ticks look at the shutdown flag (`tick_once`): no timer of its own.
    shard.ticker.stopped().await;
    shard.shutting_down.set(true);
    trace(id, "stopping: closing listeners");
    acceptor.cancel().await;
    if let Some(t) = tls_acceptor {
        t.cancel().await;
    }
    if let Some(t) = bridge_task {
        t.cancel().await;
    }
    trace(id, "stopping: closing connections");
    crate::connection::shutdown_all(&shard).await;
    trace(id, "stopping: connections closed");
    // Give connection tasks a moment to finish their teardown.
    glommio::timer::sleep(Duration::from_millis(100)).await;
    // Settlements of the closed connections (acks, requeues) travel to
    // their queues' owners over the rings: every shard's log stays open
    // until every shard has closed its connections, and a little longer
    // for their last batches to land.
    quiesced.fetch_add(1, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + QUIESCE_WAIT;
    while quiesced.load(Ordering::SeqCst) < shards && std::time::Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    glommio::timer::sleep(Duration::from_millis(50)).await;
    shard.pump();
    trace(id, "stopping: closing the log");
    if let Some(log) = shard.log.as_ref() {
        let closed = futures_lite::future::or(async { Some(log.shutdown().await) }, async {
            glommio::timer::sleep(LOG_CLOSE_WAIT).await;
            None
        })
        .await;
        match closed {
            Some(Ok(())) => trace(id, "stopping: log closed"),
            Some(Err(e)) => tracing::error!(shard = id, "log not closed cleanly: {e}"),
            None => tracing::error!(
                shard = id,
                "log not flushed within {LOG_CLOSE_WAIT:?}, records after \
                 the last fsync are lost"
            ),
        }
    }
}

/// Accepts connections on `listener` until cancelled, serving each in a
/// task of its own.
async fn accept_loop<F, Fut>(listener: TcpListener, shard: u16, what: &'static str, serve: F)
where
    F: Fn(glommio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    loop {
        match listener.accept().await {
            Ok(stream) => {
                glommio::spawn_local(serve(stream)).detach();
            }
            Err(e) => {
                tracing::error!(shard, "{what} accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// How long a stopping shard waits for the others to close their
/// connections before it closes its log anyway.
const QUIESCE_WAIT: Duration = Duration::from_secs(5);

/// How long a stopping shard waits for its log's last write and fsync.
const LOG_CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Start and stop progress (`--log-level debug`).
fn trace(shard: usize, what: &str) {
    tracing::debug!(shard = shard, "{what}");
}

fn termination_sigset() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}

/// Blocks SIGINT/SIGTERM in this thread (and the threads it spawns) so the
/// main thread can wait for them with sigwait; ignores SIGPIPE.
fn block_termination_signals() {
    let set = termination_sigset();
    // SAFETY: plain libc calls on a valid set.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

fn wait_for_termination_signal() {
    let set = termination_sigset();
    let mut sig: libc::c_int = 0;
    // SAFETY: sigwait on a valid set; the signals are blocked in every thread.
    unsafe {
        libc::sigwait(&set, &mut sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spin_before_parking_is_read_in_microseconds_and_bounded() {
        assert_eq!(parse_spin(None), Ok(SPIN_BEFORE_PARK));
        assert_eq!(parse_spin(Some("0")), Ok(Duration::ZERO));
        assert_eq!(parse_spin(Some(" 20 ")), Ok(Duration::from_micros(20)));
        assert_eq!(parse_spin(Some("1000")), Ok(Duration::from_millis(1)));
        assert_eq!(parse_spin(Some("1001")), Err("1001".into()));
        assert_eq!(parse_spin(Some("-1")), Err("-1".into()));
        assert_eq!(parse_spin(Some("fast")), Err("fast".into()));
    }
}
