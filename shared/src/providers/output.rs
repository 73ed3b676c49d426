//! Bounded output: what a provider keeps of an HTTP body or a process's stdout and stderr.
//!
//! An unattended run must not put a 2 GB log in its journal (or in memory) because a system
//! under test answered one. At most `OUTPUT_CAP` bytes of each are kept; the rest is read and
//! dropped (a child writing more is never blocked on a full pipe) and the kept text ends with a
//! marker saying how much was dropped. The redactor recognises the marker: the start of a
//! secret cut in two by the cap is masked too.

use tokio::io::{AsyncRead, AsyncReadExt};

/// The most kept of one body or one output stream: 1 MiB.
pub const OUTPUT_CAP: usize = 1024 * 1024;

const MARKER_OPEN: &str = "…[truncated: ";
const MARKER_CLOSE: &str = " bytes dropped]";

/// `…[truncated: N bytes dropped]`.
pub fn marker(dropped: u64) -> String {
    format!("{MARKER_OPEN}{dropped}{MARKER_CLOSE}")
}

/// `…[truncated: more than N bytes dropped]`: the end was not read.
pub fn marker_unfinished(dropped: u64) -> String {
    format!("{MARKER_OPEN}{MORE_THAN}{dropped}{MARKER_CLOSE}")
}

const MORE_THAN: &str = "more than ";

/// Where the marker ending `text` starts, if `text` was cut.
pub fn cut_point(text: &str) -> Option<usize> {
    let rest = text.strip_suffix(MARKER_CLOSE)?;
    let open = rest.rfind(MARKER_OPEN)?;
    let count = &rest[open + MARKER_OPEN.len()..];
    let digits = count.strip_prefix(MORE_THAN).unwrap_or(count);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(open)
}

/// Bytes kept of a longer stream, and how many were dropped after them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Capped {
    pub kept: Vec<u8>,
    pub dropped: u64,
    /// Reading stopped before the end: more than `dropped` bytes were dropped.
    pub unfinished: bool,
}

impl Capped {
    /// Keep `chunk`'s bytes up to `cap` in all, count the others.
    pub fn push(&mut self, chunk: &[u8], cap: usize) {
        let room = cap.saturating_sub(self.kept.len()).min(chunk.len());
        self.kept.extend_from_slice(&chunk[..room]);
        self.dropped += (chunk.len() - room) as u64;
    }

    /// The kept bytes as text (invalid UTF-8 replaced), with the marker when some were
    /// dropped. A character cut by the cap counts as dropped.
    pub fn text(self) -> String {
        self.text_decoded(|bytes| String::from_utf8_lossy(bytes).into_owned())
    }

    /// `text`, the kept bytes decoded by `decode` (an HTTP body's charset).
    pub fn text_decoded(mut self, decode: impl FnOnce(&[u8]) -> String) -> String {
        if self.dropped == 0 && !self.unfinished {
            return decode(&self.kept);
        }
        let whole = whole_chars(&self.kept);
        self.dropped += (self.kept.len() - whole) as u64;
        self.kept.truncate(whole);
        let mut text = decode(&self.kept);
        text.push_str(&if self.unfinished {
            marker_unfinished(self.dropped)
        } else {
            marker(self.dropped)
        });
        text
    }
}

/// The length of `bytes` without a UTF-8 sequence cut at its end.
fn whole_chars(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=len.min(4) {
        let b = bytes[len - back];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: look for its lead
        }
        let needs = match b {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if needs > back { len - back } else { len };
    }
    len
}

/// Read `reader` to its end, keeping at most `cap` bytes.
pub async fn read_capped<R: AsyncRead + Unpin>(mut reader: R, cap: usize) -> Capped {
    let mut capped = Capped::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => capped.push(&buf[..n], cap),
        }
    }
    capped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_kept_and_what_the_marker_says() {
        let cases: &[(&[&[u8]], usize, &str)] = &[
            // (chunks, cap, text)
            (&[b"hello"], 10, "hello"),
            (
                &[b"hello", b" world"],
                5,
                "hello…[truncated: 6 bytes dropped]",
            ),
            (&[b"hel", b"lo"], 4, "hell…[truncated: 1 bytes dropped]"),
            (&[b"abc"], 0, "…[truncated: 3 bytes dropped]"),
            // "ä" is two bytes: cut in the middle, it is dropped whole
            (
                &[b"a", &[0xC3], &[0xA4]],
                2,
                "a…[truncated: 2 bytes dropped]",
            ),
            (&["€x".as_bytes()], 3, "€…[truncated: 1 bytes dropped]"),
            (&["x🔑".as_bytes()], 4, "x…[truncated: 4 bytes dropped]"),
        ];
        for (chunks, cap, text) in cases {
            let mut c = Capped::default();
            chunks.iter().for_each(|ch| c.push(ch, *cap));
            assert_eq!(c.text(), *text, "{chunks:?} cap {cap}");
        }
    }

    #[test]
    fn the_marker_is_recognised_only_at_the_end() {
        assert_eq!(cut_point(&format!("abc{}", marker(7))), Some(3));
        assert_eq!(cut_point(&format!("{}abc", marker(7))), None);
        assert_eq!(cut_point("abc…[truncated: x bytes dropped]"), None);
        assert_eq!(cut_point("plain"), None);
        assert_eq!(cut_point(&format!("ab{}", marker_unfinished(9))), Some(2));
    }
}
