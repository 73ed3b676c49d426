//! Hostile documents, and a runner that measures what a binary spends on one: how it ended
//! (exit code or signal), wall time and peak resident memory (`wait4`'s rusage for exactly
//! that child). Shared by the worker's and the producer's hostile-file tests.
//!
//! A child's peak includes what its parent held when it was spawned (Linux carries the
//! pre-`exec` high-water mark over), so the big files are streamed to disk, never held here,
//! and the measure stays an upper bound of the binary's own.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The bounds every hostile file must be validated within (issue 11).
pub const MAX_SECONDS: f64 = 10.0;
pub const MAX_RSS_MIB: f64 = 256.0;

/// `depth` block sequences inside each other, one level per line (`-`, ` -`, `  -`, …).
pub fn deep_block(depth: usize) -> Vec<u8> {
    let mut text = String::from("title: t\ndescription: d\nmethod:\n");
    for i in 0..depth {
        text.push_str(&" ".repeat(i + 2));
        text.push_str("-\n");
    }
    text.push_str(&" ".repeat(depth + 2));
    text.push_str("x\n");
    text.into_bytes()
}

/// `- - - - … x`: block nesting on one line, 2 bytes a level (the 40 KB file of the issue
/// is 20 000 levels).
pub fn deep_compact_block(depth: usize) -> Vec<u8> {
    format!("{}x\n", "- ".repeat(depth)).into_bytes()
}

/// `method: [[[[…]]]]` in YAML flow style.
pub fn deep_flow(depth: usize) -> Vec<u8> {
    format!(
        "title: t\ndescription: d\nmethod: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    )
    .into_bytes()
}

/// `{"method": [[[[…]]]]}`.
pub fn deep_json(depth: usize) -> Vec<u8> {
    format!(
        "{{\"title\": \"t\", \"description\": \"d\", \"method\": {}{}}}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    )
    .into_bytes()
}

/// "Billion laughs": ten levels of anchors, each a list of ten aliases to the one before.
pub fn alias_bomb() -> Vec<u8> {
    let mut text = String::from(
        "title: t\ndescription: d\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    text.push_str("method: *a9\n");
    text.into_bytes()
}

/// Write a valid experiment of at least `bytes` bytes to `path`, streamed (steps, each a
/// process action); its size.
pub fn write_big_experiment(path: &Path, bytes: u64) -> u64 {
    let mut out = BufWriter::new(File::create(path).unwrap());
    let head = "title: big\ndescription: a valid but very large experiment\nmethod:\n";
    out.write_all(head.as_bytes()).unwrap();
    let pad = "x".repeat(100);
    let mut written = head.len() as u64;
    let mut i = 0;
    while written < bytes {
        let step = format!(
            "  - type: action\n    name: step-{i}\n    provider:\n      type: process\n      path: /bin/true\n      arguments: \"{pad}\"\n"
        );
        out.write_all(step.as_bytes()).unwrap();
        written += step.len() as u64;
        i += 1;
    }
    out.flush().unwrap();
    written
}

/// Write a valid JSON experiment of at least `bytes` bytes to `path`, streamed, most of it
/// one long description.
pub fn write_big_json_experiment(path: &Path, bytes: usize) {
    let mut out = BufWriter::new(File::create(path).unwrap());
    out.write_all(b"{\"title\": \"t\", \"description\": \"")
        .unwrap();
    let chunk = [b'd'; 4096];
    for _ in 0..bytes.div_ceil(chunk.len()) {
        out.write_all(&chunk).unwrap();
    }
    out.write_all(b"\", \"method\": [{\"type\": \"action\", \"name\": \"a\", \"provider\": {\"type\": \"process\", \"path\": \"/bin/true\"}}]}\n").unwrap();
    out.flush().unwrap();
}

/// Bytes from a fixed-seed generator (xorshift), mostly not UTF-8.
pub fn garbage(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A UTF-16 (little endian, with its BOM) rendering of a small valid experiment.
pub fn utf16() -> Vec<u8> {
    let text = "title: t\ndescription: d\nmethod:\n  - type: action\n    name: a\n    provider: {type: process, path: /bin/true}\n";
    [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect()
}

/// How one run of a binary went.
#[derive(Debug)]
pub struct Measured {
    /// The exit code, `None` when a signal ended it.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub seconds: f64,
    pub max_rss_mib: f64,
    pub stdout: String,
    pub stderr: String,
}

impl Measured {
    /// Exit 0 or 1 (never a signal, an abort or a kill for taking too long), within the time
    /// and memory bounds.
    pub fn assert_bounded(&self) {
        assert!(
            matches!(self.code, Some(0 | 1)),
            "ended with code {:?}, signal {:?}; stderr:\n{}",
            self.code,
            self.signal,
            tail(&self.stderr)
        );
        assert!(
            self.seconds < MAX_SECONDS,
            "took {:.1} s; stderr:\n{}",
            self.seconds,
            tail(&self.stderr)
        );
        assert!(
            self.max_rss_mib < MAX_RSS_MIB,
            "peaked at {:.0} MiB resident; stderr:\n{}",
            self.max_rss_mib,
            tail(&self.stderr)
        );
    }

    /// Refused (exit 1) within the bounds, with `located` (`file:line:col: message`) on stderr.
    pub fn assert_refused(&self, located: &str) {
        self.assert_bounded();
        assert_eq!(self.code, Some(1), "{}", self.stderr);
        assert!(
            self.stderr.contains(located),
            "no `{located}` in:\n{}",
            self.stderr
        );
    }
}

fn tail(text: &str) -> &str {
    let cut = text.len().saturating_sub(2000);
    let cut = (cut..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    &text[cut..]
}

/// Run `command` to its end (killed after 60 s) and measure it.
// the child is reaped by `wait4` below, which is what gives its rusage
#[allow(clippy::zombie_processes)]
pub fn measure(mut command: Command) -> Measured {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = command.spawn().expect("the binary starts");
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let mut killed = false;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: `rusage` is plain data, valid when zeroed.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child, not yet reaped (only this loop waits for it); both
        // pointers are to live locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(reaped >= 0, "wait4: {}", std::io::Error::last_os_error());
        if reaped == pid {
            break (status, usage);
        }
        if !killed && start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let seconds = start.elapsed().as_secs_f64();
    Measured {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        seconds,
        // Linux reports kilobytes
        max_rss_mib: usage.ru_maxrss as f64 / 1024.0,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}
