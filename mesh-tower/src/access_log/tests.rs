use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderValue, Method, Version};

use super::*;

/// A writer the test reads back.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn entry() -> Entry {
    Entry {
        start_time: UNIX_EPOCH + Duration::from_millis(1_796_601_600_250),
        method: Method::GET,
        uri: "http://ratings:9080/ratings/0?x=1".parse().unwrap(),
        authority: Some(HeaderValue::from_static("ratings:9080")),
        protocol: Version::HTTP_2,
        response_code: 503,
        response_flags: "UF",
        bytes_received: 120,
        bytes_sent: 0,
        duration: Duration::from_millis(12),
        upstream_host: Some("10.0.0.7:9080".parse().unwrap()),
        upstream_cluster: Some("outbound|9080||ratings.default.svc.cluster.local".into()),
        request_id: Some(HeaderValue::from_static("req-1")),
        user_agent: None,
        peer: Some("spiffe://cluster.local/ns/default/sa/ratings".into()),
    }
}

/// Waits (for at most 10 s) until `out` holds `lines` lines: the writer
/// is a thread of its own.
fn settle(out: &Buffer, lines: usize) {
    for _ in 0..10_000 {
        if out.text().lines().count() >= lines {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("{lines} lines never came: {:?}", out.text());
}

#[test]
fn lines_are_written_in_envoys_text_format_or_as_json() {
    let out = Buffer::default();
    let log = AccessLog::new(Format::Text, out.clone());
    log.log(entry());
    settle(&out, 1);
    assert_eq!(
        out.text(),
        "[2026-12-07T00:00:00.250Z] \"GET /ratings/0?x=1 HTTP/2.0\" 503 UF 120 0 12 - \"-\" \
         \"-\" \"req-1\" \"ratings:9080\" \"10.0.0.7:9080\" outbound|9080||ratings.default.svc.cluster.local \
         spiffe://cluster.local/ns/default/sa/ratings\n"
    );
    let out = Buffer::default();
    let log = AccessLog::new(Format::Json, out.clone());
    log.log(entry());
    settle(&out, 1);
    let line: serde_json::Value = serde_json::from_str(out.text().trim()).unwrap();
    assert_eq!(line["response_code"], 503);
    assert_eq!(line["path"], "/ratings/0?x=1");
    assert_eq!(line["upstream_host"], "10.0.0.7:9080");
    assert_eq!(line["x_request_id"], "req-1");
    assert_eq!(line["duration"], 12);
}

/// A writer that holds its first write until let go, telling when it is
/// in it.
struct Gated {
    out: Buffer,
    entered: Option<std::sync::mpsc::Sender<()>>,
    release: std::sync::mpsc::Receiver<()>,
}

impl Write for Gated {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(entered) = self.entered.take() {
            entered.send(()).unwrap();
            self.release.recv().unwrap();
        }
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_full_queue_drops_and_counts_lines_never_waits() {
    let out = Buffer::default();
    let (entered, in_write) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel();
    let writer = Gated {
        out: out.clone(),
        entered: Some(entered),
        release: released,
    };
    let log = AccessLog::with_capacity(Format::Text, writer, 2);
    // The writer takes the first line and is held writing it: the queue
    // takes two more, the rest are dropped, and none of it waits.
    log.log(entry());
    in_write.recv().unwrap();
    for _ in 0..5 {
        log.log(entry());
    }
    assert_eq!(log.dropped(), 3);
    release.send(()).unwrap();
    settle(&out, 3);
    assert_eq!(out.text().lines().count(), 3);
}

/// A writer that always fails, as a full disk does.
struct Broken;

impl std::io::Write for Broken {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("no space left on device"))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn lines_that_cannot_be_written_are_counted_lost() {
    let log = AccessLog::new(Format::Json, Broken);
    for _ in 0..3 {
        log.log(entry());
    }
    for _ in 0..10_000 {
        if log.dropped() == 3 {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("{} of 3 lines counted lost", log.dropped());
}
