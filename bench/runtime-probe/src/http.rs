//! A minimal blocking HTTP/1.1 server on one `std::thread`, the same for both runtimes, so the
//! HTTP stack stays out of the comparison. One request per connection (`Connection: close`),
//! requests handled one after another. Enough for WHEP clients and health checks, not more.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// Largest request head or body accepted.
const MAX_BODY: usize = 64 * 1024;

/// One request as the application sees it.
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, query string included.
    pub path: String,
    /// The body (empty without `Content-Length`).
    pub body: String,
}

/// One response: status, extra headers, content type and body.
#[derive(Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Extra headers (name, value).
    pub headers: Vec<(&'static str, String)>,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Response {
    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            content_type: "text/plain",
            body: body.into(),
        }
    }
}

/// Serves `listener` on a new thread named `http`, answering each request with `handle`.
pub fn serve(
    listener: TcpListener,
    handle: impl Fn(Request) -> Response + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if let Err(e) = one(stream, &handle) {
                    eprintln!("probe: http: {e}");
                }
            }
        })
}

fn one(stream: TcpStream, handle: &impl Fn(Request) -> Response) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return reply(stream, Response::text(400, "bad request line\n"));
    };
    let (method, path) = (method.to_string(), path.to_string());
    let mut length = 0usize;
    let mut head = line.len();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        head += line.len();
        if head > MAX_BODY {
            return reply(stream, Response::text(431, "request head too large\n"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(usize::MAX);
        }
    }
    if length > MAX_BODY {
        return reply(stream, Response::text(413, "body too large\n"));
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let request = Request {
        method,
        path,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    reply(stream, handle(request))
}

fn reply(mut stream: TcpStream, r: Response) -> std::io::Result<()> {
    let reason = match r.status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        r.content_type,
        r.body.len()
    );
    for (k, v) in &r.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&r.body);
    stream.write_all(out.as_bytes())?;
    stream.flush()
}
