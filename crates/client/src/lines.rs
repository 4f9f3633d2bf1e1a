//! Splits a byte stream into newline-terminated lines, with a bound.
//!
//! In: chunks as they arrive from the network. Out: complete lines without
//! their `\n` (blank lines skipped), or an error once a line grows past
//! `line_bytes_max` — a stream that never ends a line must not eat memory.

#[derive(Debug)]
pub struct LineBuffer {
    pending: Vec<u8>,
    line_bytes_max: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineTooLong {
    pub line_bytes_max: usize,
}

impl LineBuffer {
    pub fn new(line_bytes_max: usize) -> Self {
        LineBuffer { pending: Vec::new(), line_bytes_max }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
    }

    /// The next complete line, if one has arrived.
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, LineTooLong> {
        loop {
            let Some(end) = self.pending.iter().position(|&byte| byte == b'\n') else {
                if self.pending.len() > self.line_bytes_max {
                    return Err(LineTooLong { line_bytes_max: self.line_bytes_max });
                }
                return Ok(None);
            };
            if end > self.line_bytes_max {
                return Err(LineTooLong { line_bytes_max: self.line_bytes_max });
            }
            let mut line: Vec<u8> = self.pending.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(line));
            }
        }
    }

    /// What is left after the stream ended (a last line with no `\n`).
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let rest = std::mem::take(&mut self.pending);
        (!rest.iter().all(u8::is_ascii_whitespace)).then_some(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_come_out_whole() {
        let mut buffer = LineBuffer::new(100);
        buffer.push(b"{\"a\":1}\n{\"b\"");
        assert_eq!(buffer.next_line().unwrap(), Some(b"{\"a\":1}".to_vec()));
        assert_eq!(buffer.next_line().unwrap(), None);
        buffer.push(b":2}\r\n\n  \n{\"c\":3}");
        assert_eq!(buffer.next_line().unwrap(), Some(b"{\"b\":2}".to_vec()));
        assert_eq!(buffer.next_line().unwrap(), None);
        assert_eq!(buffer.finish(), Some(b"{\"c\":3}".to_vec()));
        assert_eq!(buffer.finish(), None);
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut buffer = LineBuffer::new(8);
        buffer.push(b"12345678");
        assert_eq!(buffer.next_line().unwrap(), None);
        buffer.push(b"9");
        assert_eq!(buffer.next_line(), Err(LineTooLong { line_bytes_max: 8 }));
        let mut complete = LineBuffer::new(8);
        complete.push(b"123456789\n");
        assert!(complete.next_line().is_err(), "a complete line past the bound is refused too");
    }
}
