//! The control protocol, shared by the daemon ([`super::server`]) and the CLI ([`super::client`]).
//!
//! **JSON lines**, not postcard: one request per line, one response per line (a `logs` request
//! answers with one line per log line). JSON lines can be typed by hand into `socat -
//! UNIX-CONNECT:control.sock`, read in a packet capture, and carried unchanged by the serial
//! console; the messages are a few hundred bytes a second at most, so a binary framing would save
//! nothing that matters on a Pi.
//!
//! - Request: `{"v":1,"cmd":"status"}`; commands with arguments carry them as fields
//!   (`{"v":1,"cmd":"kick","id":"..."}`).
//! - Response: `{"v":1,"ok":true,"data":...}` or `{"v":1,"ok":false,"error":"..."}`.
//! - Every message is at most [`MAX_MESSAGE`] bytes including its newline. A longer request gets an
//!   error response and the connection is closed (the rest of the line is not read). The one
//!   exception is the answer to `snapshot`, a JPEG in base64 (`jpeg_base64`), which may be up to
//!   [`MAX_SNAPSHOT_MESSAGE`]; the CLI accepts that size only after it asked for a snapshot, and
//!   requests stay at [`MAX_MESSAGE`].
//! - `v` is [`VERSION`]; another version gets an error that names both, so an old CLI against a
//!   new daemon (or the reverse) says so instead of misreading fields.

// Fed from outside the node: no indexing, slicing or arithmetic that can panic (ARCHITECTURE.md,
// "A fault stays where it happened"); fuzzed by `fuzz/fuzz_targets/control_request.rs`.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// The protocol version both sides speak.
pub const VERSION: u32 = 1;
/// The longest message, newline included.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// The longest answer to `snapshot`, newline included: the largest JPEG the node makes
/// ([`crate::media::snapshot::MAX_JPEG_BYTES`], 8 MiB) in base64, with room for the other fields.
pub const MAX_SNAPSHOT_MESSAGE: usize = 12 * 1024 * 1024;
/// The most log lines one `logs` request may ask for (the ring's size).
pub const MAX_LOG_LINES: usize = 1000;

/// A command the daemon understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Source, state, fps, bitrate, viewers, drops, uptime, chain, board health.
    Status,
    /// Force a keyframe (rate-limited like a viewer's PLI).
    Keyframe,
    /// Stop sending frames to viewers (they stay connected).
    StreamStop,
    /// Send frames again.
    StreamStart,
    /// The viewer sessions.
    Viewers,
    /// End one viewer session.
    Kick {
        /// The session id (`viewers` lists them).
        id: String,
    },
    /// The last `lines` log lines, then (with `follow`) every new one.
    Logs {
        /// How many recent lines (at most [`MAX_LOG_LINES`]).
        lines: usize,
        /// Keep the connection open and stream new lines.
        follow: bool,
    },
    /// Replace the log filter (`info`, `debug`, `sutantra=debug,webrtc=warn`).
    SetLogLevel {
        /// The new filter.
        level: String,
    },
    /// Close and reopen the capture source without stopping the HTTP server or the viewers.
    RebootStream,
    /// The effective configuration.
    ConfigShow,
    /// Read the configuration file again and apply what changed (as SIGHUP does).
    Reload,
    /// The latest picture as a JPEG (the same cache as `GET /snapshot.jpg`); the answer is
    /// `width`, `height`, `bytes`, `quality`, `capture_us` and `jpeg_base64`.
    Snapshot {
        /// JPEG quality 1-100 (default: `http.snapshot_quality`).
        #[serde(default)]
        quality: Option<u8>,
    },
}

/// Why a message could not be read or understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The line is longer than [`MAX_MESSAGE`]; the connection is closed after the answer.
    #[error("message longer than {MAX_MESSAGE} bytes")]
    TooLong,
    /// Not JSON, or not an object.
    #[error("bad request: {0}")]
    BadJson(String),
    /// Another protocol version.
    #[error(
        "protocol version {0} is not supported (this node speaks version {VERSION}); use a `sutantra` of the same release"
    )]
    Version(String),
    /// An unknown command or bad arguments.
    #[error("{0}")]
    BadCommand(String),
}

/// A response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version.
    pub v: u32,
    /// The command succeeded.
    pub ok: bool,
    /// The answer (only when `ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// What went wrong and what to do (only when not `ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    /// A success with `data`.
    pub fn ok(data: Value) -> Self {
        Self {
            v: VERSION,
            ok: true,
            data: Some(data),
            error: None,
        }
    }

    /// A failure.
    pub fn err(error: impl Into<String>) -> Self {
        Self {
            v: VERSION,
            ok: false,
            data: None,
            error: Some(error.into()),
        }
    }

    /// The response as one line (newline included). One over the cap becomes an error response.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_capped(MAX_MESSAGE)
    }

    /// [`Response::encode`] with another cap (the `snapshot` answer's, [`MAX_SNAPSHOT_MESSAGE`]).
    pub fn encode_capped(&self, cap: usize) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        if out.is_empty() || out.len() >= cap {
            out = serde_json::to_vec(&Response::err(format!(
                "the answer is longer than {cap} bytes; ask for less"
            )))
            .unwrap_or_default();
        }
        out.push(b'\n');
        out
    }

    /// Parses a response line.
    pub fn decode(line: &[u8]) -> Result<Self, ProtoError> {
        let value: Value =
            serde_json::from_slice(line).map_err(|e| ProtoError::BadJson(e.to_string()))?;
        check_version(&value)?;
        serde_json::from_value(value).map_err(|e| ProtoError::BadJson(e.to_string()))
    }
}

fn check_version(value: &Value) -> Result<(), ProtoError> {
    let Some(obj) = value.as_object() else {
        return Err(ProtoError::BadJson("expected a JSON object".into()));
    };
    match obj.get("v") {
        Some(v) if v.as_u64() == Some(u64::from(VERSION)) => Ok(()),
        Some(v) => Err(ProtoError::Version(v.to_string())),
        None => Err(ProtoError::Version("(missing \"v\")".into())),
    }
}

impl Request {
    /// The request as one line (newline included).
    pub fn encode(&self) -> Vec<u8> {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(obj) = value.as_object_mut() {
            obj.insert("v".into(), Value::from(VERSION));
        }
        let mut out = serde_json::to_vec(&value).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Parses a request line (without its newline).
    pub fn decode(line: &[u8]) -> Result<Self, ProtoError> {
        if line.len() >= MAX_MESSAGE {
            return Err(ProtoError::TooLong);
        }
        let mut value: Value =
            serde_json::from_slice(line).map_err(|e| ProtoError::BadJson(e.to_string()))?;
        check_version(&value)?;
        if let Some(obj) = value.as_object_mut() {
            obj.remove("v");
            if !obj.contains_key("cmd") {
                return Err(ProtoError::BadCommand(
                    "missing \"cmd\" (e.g. {\"v\":1,\"cmd\":\"status\"})".into(),
                ));
            }
        }
        let request: Request = serde_json::from_value(value.clone())
            .map_err(|e| ProtoError::BadCommand(e.to_string()))?;
        // serde ignores extra fields on commands without arguments: refuse them here too, so a
        // misspelt argument is never silently dropped.
        let known = serde_json::to_value(&request).unwrap_or(Value::Null);
        if let (Some(sent), Some(known)) = (value.as_object(), known.as_object())
            && let Some(extra) = sent.keys().find(|k| !known.contains_key(*k))
        {
            return Err(ProtoError::BadCommand(format!(
                "unknown field `{extra}` for this command"
            )));
        }
        Ok(request)
    }
}

/// Reads one line of at most [`MAX_MESSAGE`] bytes into `buf` (newline stripped).
/// `Ok(false)` at the end of the stream; [`ProtoError::TooLong`] when the cap is passed (the
/// excess is not read).
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> Result<bool, ProtoError> {
    read_line_capped(reader, buf, MAX_MESSAGE).await
}

/// [`read_line`] with another cap (the CLI reading a `snapshot` answer).
pub async fn read_line_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
) -> Result<bool, ProtoError> {
    buf.clear();
    let n = (&mut *reader)
        .take(cap as u64)
        .read_until(b'\n', buf)
        .await
        .map_err(|e| ProtoError::BadJson(format!("read failed: {e}")))?;
    if n == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(true)
    } else if n >= cap {
        Err(ProtoError::TooLong)
    } else {
        // The last line of a stream without its newline: take it as it is.
        Ok(true)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_with_the_version() {
        for r in [
            Request::Status,
            Request::Kick { id: "ab".into() },
            Request::Logs {
                lines: 5,
                follow: true,
            },
            Request::SetLogLevel {
                level: "debug".into(),
            },
            Request::ConfigShow,
            Request::Snapshot { quality: None },
            Request::Snapshot { quality: Some(50) },
        ] {
            let line = r.encode();
            assert_eq!(line.last(), Some(&b'\n'));
            let text = String::from_utf8(line.clone()).expect("utf-8");
            assert!(text.contains("\"v\":1"), "{text}");
            assert_eq!(Request::decode(&line[..line.len() - 1]).expect("decode"), r);
        }
        assert_eq!(
            Request::decode(br#"{"v":1,"cmd":"stream-stop"}"#),
            Ok(Request::StreamStop)
        );
        assert_eq!(
            Request::decode(br#"{"v":1,"cmd":"snapshot"}"#),
            Ok(Request::Snapshot { quality: None })
        );
        assert!(matches!(
            Request::decode(br#"{"v":1,"cmd":"snapshot","quality":300}"#),
            Err(ProtoError::BadCommand(_))
        ));
    }

    #[test]
    fn a_snapshot_answer_may_be_longer_than_other_messages_but_bounded() {
        // The largest JPEG the node makes fits, in base64 (4 characters per 3 bytes), with its
        // fields.
        let b64 = base64::encoded_len(crate::media::snapshot::MAX_JPEG_BYTES, true).expect("len");
        assert!(b64 + 1024 < MAX_SNAPSHOT_MESSAGE);
        let big = Response::ok(Value::String("y".repeat(MAX_MESSAGE * 2)));
        assert!(
            !Response::decode(&big.encode())
                .map(|r| r.ok)
                .unwrap_or(true)
        );
        let line = big.encode_capped(MAX_SNAPSHOT_MESSAGE);
        assert!(line.len() > MAX_MESSAGE);
        assert!(
            Response::decode(&line[..line.len() - 1])
                .expect("decode")
                .ok
        );
    }

    #[test]
    fn bad_json_unknown_commands_and_versions_are_errors() {
        assert!(matches!(
            Request::decode(b"status"),
            Err(ProtoError::BadJson(_))
        ));
        assert!(matches!(
            Request::decode(b"[1,2]"),
            Err(ProtoError::BadJson(_))
        ));
        let e = Request::decode(br#"{"v":1,"cmd":"selfdestruct"}"#).expect_err("unknown");
        assert!(
            matches!(&e, ProtoError::BadCommand(m) if m.contains("selfdestruct")),
            "{e}"
        );
        let e = Request::decode(br#"{"v":2,"cmd":"status"}"#).expect_err("v2");
        assert!(
            matches!(&e, ProtoError::Version(_)) && e.to_string().contains("version 2"),
            "{e}"
        );
        assert!(matches!(
            Request::decode(br#"{"cmd":"status"}"#),
            Err(ProtoError::Version(_))
        ));
        assert!(matches!(
            Request::decode(br#"{"v":1}"#),
            Err(ProtoError::BadCommand(_))
        ));
        assert!(matches!(
            Request::decode(br#"{"v":1,"cmd":"kick"}"#),
            Err(ProtoError::BadCommand(_))
        ));
        assert!(matches!(
            Request::decode(br#"{"v":1,"cmd":"status","extra":1}"#),
            Err(ProtoError::BadCommand(_))
        ));
    }

    #[tokio::test]
    async fn lines_over_the_cap_are_refused() {
        let mut long = vec![b'x'; MAX_MESSAGE + 10];
        long.push(b'\n');
        let mut reader = tokio::io::BufReader::new(&long[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut reader, &mut buf).await,
            Err(ProtoError::TooLong)
        );
        assert!(buf.len() <= MAX_MESSAGE);
        assert_eq!(
            Request::decode(&vec![b' '; MAX_MESSAGE]),
            Err(ProtoError::TooLong)
        );

        let two = b"{\"v\":1,\"cmd\":\"status\"}\r\nlast";
        let mut reader = tokio::io::BufReader::new(&two[..]);
        assert_eq!(read_line(&mut reader, &mut buf).await, Ok(true));
        assert_eq!(Request::decode(&buf), Ok(Request::Status));
        assert_eq!(read_line(&mut reader, &mut buf).await, Ok(true));
        assert_eq!(buf, b"last");
        assert_eq!(read_line(&mut reader, &mut buf).await, Ok(false));
    }

    #[test]
    fn responses_stay_under_the_cap() {
        let big = Response::ok(Value::String("y".repeat(MAX_MESSAGE)));
        let line = big.encode();
        assert!(line.len() < MAX_MESSAGE);
        let back = Response::decode(&line[..line.len() - 1]).expect("decode");
        assert!(!back.ok);
        assert!(back.error.unwrap_or_default().contains("longer than"));
        let ok = Response::ok(serde_json::json!({"a": 1})).encode();
        assert_eq!(
            Response::decode(&ok[..ok.len() - 1]).expect("decode").data,
            Some(serde_json::json!({"a": 1}))
        );
    }
}
