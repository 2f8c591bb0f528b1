//! Line input on a serial line, byte by byte: what a terminal on the other end expects.
//!
//! Typed characters are echoed; backspace and DEL erase one character (`BS SP BS`); CR, LF and
//! CRLF each end one line; Ctrl-C drops the line, Ctrl-U erases it, Ctrl-D on an empty line ends
//! the session; escape sequences (arrow keys) are swallowed. There is no history, so the output
//! is predictable. A line longer than [`MAX_LINE`] bytes is not kept: the rest of it is discarded
//! and the caller says so once it ends. Sans-I/O: [`LineEditor::feed`] takes a byte and returns
//! what to echo and whether a line ended, so it is tested without a terminal.

// Fed from outside the node: no indexing, slicing or arithmetic that can panic (ARCHITECTURE.md,
// "A fault stays where it happened"); fuzzed by `fuzz/fuzz_targets/console_line.rs`.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

/// The longest line kept, in bytes.
pub const MAX_LINE: usize = 1024;

/// What one byte completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A line ended (without its line end).
    Line(String),
    /// A line ended that was longer than [`MAX_LINE`]: nothing of it was kept.
    TooLong,
    /// Ctrl-C: the line was dropped.
    Cancel,
    /// Ctrl-D on an empty line: the operator is done.
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Escape {
    #[default]
    None,
    /// After ESC.
    Start,
    /// Inside `ESC [ ...` or `ESC O ...`, until the final byte.
    Sequence,
}

/// The line being typed.
#[derive(Debug, Default)]
pub struct LineEditor {
    /// The line so far: at most [`MAX_LINE`] bytes, in place (no allocation while typing).
    buf: heapless::Vec<u8, MAX_LINE>,
    overflow: bool,
    after_cr: bool,
    escape: Escape,
}

const ERASE: &[u8] = b"\x08 \x08";

impl LineEditor {
    /// Feeds one received byte; appends what to echo to `echo`.
    pub fn feed(&mut self, b: u8, echo: &mut Vec<u8>) -> Option<Event> {
        match self.escape {
            Escape::Start => {
                self.escape = if b == b'[' || b == b'O' {
                    Escape::Sequence
                } else {
                    Escape::None
                };
                return None;
            }
            Escape::Sequence => {
                if (0x40..=0x7e).contains(&b) {
                    self.escape = Escape::None;
                }
                return None;
            }
            Escape::None => {}
        }
        let after_cr = std::mem::replace(&mut self.after_cr, false);
        match b {
            // The LF of a CRLF: the line already ended at the CR.
            b'\n' if after_cr => None,
            b'\r' | b'\n' => {
                self.after_cr = b == b'\r';
                echo.extend_from_slice(b"\r\n");
                let line = std::mem::take(&mut self.buf);
                if std::mem::replace(&mut self.overflow, false) {
                    Some(Event::TooLong)
                } else {
                    Some(Event::Line(String::from_utf8_lossy(&line).into_owned()))
                }
            }
            0x08 | 0x7f => {
                if !self.overflow && self.pop_char() {
                    echo.extend_from_slice(ERASE);
                }
                None
            }
            0x03 => {
                echo.extend_from_slice(b"^C\r\n");
                self.buf.clear();
                self.overflow = false;
                Some(Event::Cancel)
            }
            0x04 if self.buf.is_empty() && !self.overflow => Some(Event::Eof),
            0x15 => {
                while self.pop_char() {
                    echo.extend_from_slice(ERASE);
                }
                self.overflow = false;
                None
            }
            0x1b => {
                self.escape = Escape::Start;
                None
            }
            // Other control characters (tab, bell, ...) are ignored.
            0..0x20 => None,
            _ => {
                if self.overflow {
                    return None;
                }
                if self.buf.push(b).is_err() {
                    self.overflow = true;
                    return None;
                }
                echo.push(b);
                None
            }
        }
    }

    /// Removes the last character (all bytes of a UTF-8 sequence); false when the line is empty.
    fn pop_char(&mut self) -> bool {
        let Some(mut last) = self.buf.pop() else {
            return false;
        };
        // Continuation bytes are 10xxxxxx: keep popping until the sequence's first byte.
        while last & 0xc0 == 0x80 {
            match self.buf.pop() {
                Some(b) => last = b,
                None => break,
            }
        }
        true
    }
}

/// Splits a command line into words, shell style but simple: blanks separate words, `'...'`
/// is literal, `"..."` keeps blanks and takes `\"` and `\\`, and a backslash outside quotes
/// escapes the next character. No variables, globs or pipes.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("a backslash at the end of the line".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    /// Feeds `input`; returns the echo and the events.
    fn feed_all(ed: &mut LineEditor, input: &[u8]) -> (Vec<u8>, Vec<Event>) {
        let mut echo = Vec::new();
        let events = input
            .iter()
            .filter_map(|&b| ed.feed(b, &mut echo))
            .collect();
        (echo, events)
    }

    #[test]
    fn cr_lf_and_crlf_each_end_one_line() {
        let mut ed = LineEditor::default();
        let (echo, events) = feed_all(&mut ed, b"a\rb\nc\r\nd\r\r\n");
        assert_eq!(
            events,
            ["a", "b", "c", "d", ""].map(|s| Event::Line(s.into()))
        );
        assert_eq!(echo, b"a\r\nb\r\nc\r\nd\r\n\r\n");
    }

    #[test]
    fn backspace_and_del_erase_one_character() {
        let mut ed = LineEditor::default();
        let (echo, events) = feed_all(&mut ed, "stx\x08a\x7f\x7ftatué\x7fs\r".as_bytes());
        assert_eq!(events, [Event::Line("status".into())]);
        assert_eq!(
            echo,
            "stx\x08 \x08a\x08 \x08\x08 \x08tatué\x08 \x08s\r\n".as_bytes()
        );
        // Backspace on an empty line echoes nothing.
        let (echo, _) = feed_all(&mut ed, b"\x7f");
        assert!(echo.is_empty());
    }

    #[test]
    fn control_keys_and_escape_sequences() {
        let mut ed = LineEditor::default();
        let (_, events) = feed_all(&mut ed, b"junk\x03");
        assert_eq!(events, [Event::Cancel]);
        let (_, events) = feed_all(&mut ed, b"junk\x15vie\x1b[Awers\x1bOB\t\r");
        assert_eq!(events, [Event::Line("viewers".into())]);
        let (_, events) = feed_all(&mut ed, b"x\x04\x7f\x04");
        assert_eq!(events, [Event::Eof]);
    }

    #[test]
    fn an_over_long_line_is_dropped_whole() {
        let mut ed = LineEditor::default();
        let mut input = vec![b'a'; MAX_LINE + 10];
        input.push(b'\r');
        let (echo, events) = feed_all(&mut ed, &input);
        assert_eq!(events, [Event::TooLong]);
        assert_eq!(echo.len(), MAX_LINE + 2, "echo stops at the cap");
        // The next line is fine again.
        let (_, events) = feed_all(&mut ed, b"status\r");
        assert_eq!(events, [Event::Line("status".into())]);
        let mut exact = vec![b'b'; MAX_LINE];
        exact.push(b'\n');
        let (_, events) = feed_all(&mut ed, &exact);
        assert_eq!(events, [Event::Line("b".repeat(MAX_LINE))]);
    }

    #[test]
    fn words_split_like_a_simple_shell() {
        let w = |s: &str| split_words(s).expect(s);
        assert_eq!(w("  status   --json "), ["status", "--json"]);
        assert_eq!(
            w("set-log-level 'sutantra=debug,info'"),
            ["set-log-level", "sutantra=debug,info"]
        );
        assert_eq!(
            w(r#"a "b c" d\ e "x\"y" ''"#),
            ["a", "b c", "d e", "x\"y", ""]
        );
        assert!(w("").is_empty());
        assert!(split_words("a 'b").is_err());
        assert!(split_words("a \"b").is_err());
        assert!(split_words("a \\").is_err());
    }
}
