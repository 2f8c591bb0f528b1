//! The one place that knows which async runtime the probe runs on.
//!
//! Both variants have the same shape: the probe's own tasks (offer handling, the pacer, one
//! writer and one RTCP reader per viewer) run on a single-threaded executor driven by the main
//! thread, and every peer connection's driver runs on the `webrtc` crate's dedicated reactor pool
//! with one thread (`webrtc-rx0`, see `with_dedicated_reactor_pool_size(1)` in `main.rs`).
//!
//! - tokio: a `current_thread` runtime (I/O and timer drivers enabled) on the main thread; the
//!   pool thread hosts another `current_thread` runtime (built by `webrtc`).
//! - smol: a `smol::Executor` run by `smol::block_on` on the main thread; the pool thread runs
//!   another `Executor`. smol's I/O reactor and timers are process-global (`async-io`), driven by
//!   whichever thread is idle in `block_on`, or by its own `async-io` thread when none is.

use std::future::Future;
use std::sync::Arc;
use webrtc::runtime::Runtime;

#[cfg(all(feature = "tokio", feature = "smol"))]
compile_error!(
    "features `tokio` and `smol` are exclusive: build with `--no-default-features --features smol`"
);
#[cfg(not(any(feature = "tokio", feature = "smol")))]
compile_error!("enable exactly one of the features `tokio` (default) and `smol`");

/// The runtime's name, as `/healthz` reports it.
#[cfg(feature = "tokio")]
pub const NAME: &str = "tokio";
/// The runtime's name, as `/healthz` reports it.
#[cfg(feature = "smol")]
pub const NAME: &str = "smol";

/// The `webrtc` crate's adapter for this runtime (sockets, timers, the reactor pool).
#[cfg(feature = "tokio")]
pub fn webrtc_runtime() -> Arc<dyn Runtime> {
    Arc::new(webrtc::runtime::TokioRuntime)
}

/// The `webrtc` crate's adapter for this runtime (sockets, timers, the reactor pool).
#[cfg(feature = "smol")]
pub fn webrtc_runtime() -> Arc<dyn Runtime> {
    Arc::new(webrtc::runtime::SmolRuntime)
}

#[cfg(feature = "smol")]
static EXECUTOR: smol::Executor<'static> = smol::Executor::new();

/// Runs `main` to completion on a single-threaded executor on the calling thread.
#[cfg(feature = "tokio")]
pub fn block_on(main: impl Future<Output = ()>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    rt.block_on(main);
}

/// Runs `main` to completion on a single-threaded executor on the calling thread.
#[cfg(feature = "smol")]
pub fn block_on(main: impl Future<Output = ()>) {
    smol::block_on(EXECUTOR.run(main));
}

/// Spawns a detached task on the executor of [`block_on`].
#[cfg(feature = "tokio")]
pub fn spawn(task: impl Future<Output = ()> + Send + 'static) {
    drop(tokio::spawn(task));
}

/// Spawns a detached task on the executor of [`block_on`].
#[cfg(feature = "smol")]
pub fn spawn(task: impl Future<Output = ()> + Send + 'static) {
    EXECUTOR.spawn(task).detach();
}
