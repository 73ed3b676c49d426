//! A small HTTP/1.1 server on 127.0.0.1 for the load generator's tests and benchmark: a thread
//! per connection, keep-alive, answers by path: `/slow/<ms>` after that many milliseconds,
//! `/serial/<ms>` after that many milliseconds with one such answer at a time (a server with
//! the capacity of one worker), `/status/<code>` with that status, anything else 200 at once.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct LoadServer {
    pub port: u16,
    /// Requests answered so far.
    pub answered: Arc<AtomicU64>,
}

impl LoadServer {
    pub fn start() -> LoadServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let answered = Arc::new(AtomicU64::new(0));
        let counter = answered.clone();
        let serial = Arc::new(Mutex::new(()));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (counter, serial) = (counter.clone(), serial.clone());
                std::thread::spawn(move || connection(stream, &counter, &serial));
            }
        });
        LoadServer { port, answered }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn connection(stream: TcpStream, answered: &AtomicU64, serial: &Mutex<()>) {
    let _ = stream.set_nodelay(true);
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut first = String::new();
        if reader.read_line(&mut first).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            match reader.read_line(&mut header) {
                Ok(0) | Err(_) => return,
                Ok(_) if header == "\r\n" || header == "\n" => break,
                Ok(_) => {}
            }
        }
        let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
        let number = |prefix: &str| {
            path.strip_prefix(prefix)
                .and_then(|n| n.parse::<u64>().ok())
        };
        let mut status = 200;
        if let Some(ms) = number("/slow/") {
            std::thread::sleep(Duration::from_millis(ms));
        } else if let Some(ms) = number("/serial/") {
            let _one_at_a_time = serial.lock().unwrap_or_else(|e| e.into_inner());
            std::thread::sleep(Duration::from_millis(ms));
        } else if let Some(code) = number("/status/") {
            status = code;
        }
        answered.fetch_add(1, Ordering::Relaxed);
        let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\nok");
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
