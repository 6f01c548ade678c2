//! [`GrpcMessages`]: counts the messages of a gRPC stream as its bytes go
//! by, by their 5-byte prefixes (a flag and a big-endian length), however
//! the stream is cut into frames; [`Tally`]: what a body carried, its
//! bytes and (for gRPC) those messages.

use bytes::Buf;

#[derive(Debug, Default)]
pub(super) struct GrpcMessages {
    count: u64,
    prefix: [u8; 5],
    /// Bytes of the current prefix seen.
    prefix_len: usize,
    /// Bytes of the current message still to come.
    remaining: u64,
    /// Data came in more pieces than can be looked at: counting stopped.
    lost: bool,
}

impl GrpcMessages {
    /// The messages begun so far.
    pub(super) fn count(&self) -> u64 {
        self.count
    }

    /// Reads `data` without consuming it: up to 64 of its pieces (a
    /// body's data is one piece, or a chain of a few); beyond them the
    /// count would go wrong, and stops.
    pub(super) fn feed(&mut self, data: &impl Buf) {
        if self.lost {
            return;
        }
        let mut slices = [std::io::IoSlice::new(&[]); 64];
        let n = data.chunks_vectored(&mut slices);
        let mut seen = 0;
        for slice in &slices[..n] {
            self.feed_slice(slice);
            seen += slice.len();
        }
        self.lost = seen < data.remaining();
    }

    fn feed_slice(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let n = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                self.remaining -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let n = (5 - self.prefix_len).min(bytes.len());
            self.prefix[self.prefix_len..self.prefix_len + n].copy_from_slice(&bytes[..n]);
            self.prefix_len += n;
            bytes = &bytes[n..];
            if self.prefix_len == 5 {
                self.count += 1;
                let [_, a, b, c, d] = self.prefix;
                self.remaining = u64::from(u32::from_be_bytes([a, b, c, d]));
                self.prefix_len = 0;
            }
        }
    }
}

/// What a body carried so far: its bytes and, for gRPC, its messages.
#[derive(Debug)]
pub(super) struct Tally {
    pub(super) bytes: u64,
    messages: Option<GrpcMessages>,
}

impl Tally {
    /// From `bytes` (a head's, say), counting messages too when `grpc`.
    pub(super) fn new(bytes: u64, grpc: bool) -> Self {
        Self {
            bytes,
            messages: grpc.then(GrpcMessages::default),
        }
    }

    /// Counts `data`, without consuming it.
    pub(super) fn feed(&mut self, data: &impl Buf) {
        self.bytes += data.remaining() as u64;
        if let Some(messages) = &mut self.messages {
            messages.feed(data);
        }
    }

    /// The messages begun so far, for gRPC.
    pub(super) fn messages(&self) -> Option<u64> {
        self.messages.as_ref().map(GrpcMessages::count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: u32) -> Vec<u8> {
        let mut m = vec![0];
        m.extend_from_slice(&len.to_be_bytes());
        m.resize(5 + len as usize, 7);
        m
    }

    #[test]
    fn messages_are_counted_however_the_bytes_are_cut() {
        let stream: Vec<u8> = [message(3), message(0), message(300), message(1)].concat();
        for cut in [1, 2, 4, 5, 6, 64, stream.len()] {
            let mut messages = GrpcMessages::default();
            for piece in stream.chunks(cut) {
                messages.feed(&bytes::Bytes::copy_from_slice(piece));
            }
            assert_eq!(messages.count(), 4, "cut every {cut} bytes");
        }
        // A chain of two pieces.
        let mut messages = GrpcMessages::default();
        let (a, b) = stream.split_at(7);
        messages.feed(&a.chain(b));
        assert_eq!(messages.count(), 4);
    }
}
