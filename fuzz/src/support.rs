//! What the harnesses share: one tokio runtime (the WHEP answers and the control socket's line
//! reader are async, as in the node), one lock for the harnesses that use a shared resource, a
//! scratch directory per process (files written for one input are removed before the harness
//! returns), and a loopback HTTP server whose answers the fuzz input decides (the WHIP POST and
//! the CometBFT RPC calls run through the node's real HTTP client against it).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// Serialises the harnesses that share the HTTP server, the WHEP sessions or a scratch file
/// (the stable replay tests run in parallel threads; libFuzzer runs one input at a time).
pub(crate) fn lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The runtime the async entry points run on: multi-threaded, as the node's.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("fuzz harness: no tokio runtime: {e}"))
    })
}

/// An empty directory `name` in this process's scratch space (under `$TMPDIR`).
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("sutantra-fuzz-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("fuzz harness: cannot create {}: {e}", dir.display()));
    dir
}

/// Removes a directory made by [`scratch`] (and this process's scratch root once it is empty).
pub(crate) fn remove(dir: &std::path::Path) {
    let _ = std::fs::remove_dir_all(dir);
    if let Some(root) = dir.parent() {
        let _ = std::fs::remove_dir(root);
    }
}

/// What the server answers a request for `path` (with its query): the whole HTTP response.
type Answer = Box<dyn Fn(&str) -> Vec<u8> + Send>;

/// The loopback HTTP server: one thread, one connection at a time, `Connection: close`.
pub(crate) struct Http {
    addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
}

/// The server (started on first use).
pub(crate) fn http() -> &'static Http {
    static HTTP: OnceLock<Http> = OnceLock::new();
    HTTP.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("fuzz harness: cannot bind a loopback port: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fuzz harness: no local address: {e}"));
        let answer: Arc<Mutex<Answer>> = Arc::new(Mutex::new(Box::new(|_| Vec::new())));
        let serving = answer.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                serve(&mut stream, &serving);
            }
        });
        Http { addr, answer }
    })
}

impl Http {
    /// `http://127.0.0.1:PORT`.
    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets what the following requests are answered with.
    pub(crate) fn set(&self, answer: impl Fn(&str) -> Vec<u8> + Send + 'static) {
        *self.answer.lock().unwrap_or_else(|p| p.into_inner()) = Box::new(answer);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one request (head and `Content-Length` body), writes the answer, closes.
fn serve(stream: &mut TcpStream, answer: &Mutex<Answer>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let body_len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0)
        .min(1 << 20);
    while buf.len() < head_end + body_len {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let reply = (answer.lock().unwrap_or_else(|p| p.into_inner()))(&path);
    let _ = stream.write_all(&reply);
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
}
