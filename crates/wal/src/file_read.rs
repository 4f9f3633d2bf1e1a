//! Reading one whole file in bounded pieces.
//!
//! In: a file name, the byte range to read (usually the whole length the
//! directory listing gave), the largest read allowed; then each read's
//! bytes. Out: the next `Read` request until the range is in memory, then
//! its contents. A file that shrinks or grows while
//! read is an error: recovery reads files nothing else writes.

use haven_runtime::{FileName, IoRequest};

#[derive(Debug)]
pub(crate) struct FileRead {
    file: FileName,
    start: u64,
    len: u64,
    read_bytes_max: u32,
    buf: Vec<u8>,
}

impl FileRead {
    /// Reads `len` bytes from `start`; the caller checked that they may be
    /// held in memory.
    pub(crate) fn new(file: FileName, start: u64, len: u64, read_bytes_max: u32) -> FileRead {
        assert!(read_bytes_max > 0, "validated by WalConfig");
        let capacity = usize::try_from(len).expect("the caller bounded the length");
        FileRead { file, start, len, read_bytes_max, buf: Vec::with_capacity(capacity) }
    }

    pub(crate) fn file(&self) -> &FileName {
        &self.file
    }

    /// The next read, or `None` once the whole file is in memory.
    pub(crate) fn request(&self) -> Option<IoRequest> {
        let done = self.buf.len() as u64;
        let remaining = self.len - done;
        (remaining > 0).then(|| IoRequest::Read {
            file: self.file.clone(),
            offset: self.start + done,
            len_max: u32::try_from(remaining).unwrap_or(u32::MAX).min(self.read_bytes_max),
        })
    }

    pub(crate) fn on_data(&mut self, data: &[u8]) -> Result<(), String> {
        let remaining = self.len - self.buf.len() as u64;
        let expected = remaining.min(u64::from(self.read_bytes_max));
        if data.len() as u64 != expected {
            let offset = self.start + self.buf.len() as u64;
            return Err(format!("read at {offset} returned {} bytes, expected {expected}", data.len()));
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        assert_eq!(self.buf.len() as u64, self.len, "the whole file is read before it is used");
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_in_bounded_pieces_and_a_short_read_is_an_error() {
        let mut read = FileRead::new(FileName::new("f").unwrap(), 0, 10, 4);
        let mut offsets = Vec::new();
        while let Some(IoRequest::Read { offset, len_max, .. }) = read.request() {
            offsets.push((offset, len_max));
            read.on_data(&vec![offset as u8; len_max as usize]).unwrap();
        }
        assert_eq!(offsets, vec![(0, 4), (4, 4), (8, 2)]);
        assert_eq!(read.into_bytes(), vec![0, 0, 0, 0, 4, 4, 4, 4, 8, 8]);
        let mut short = FileRead::new(FileName::new("f").unwrap(), 100, 10, 4);
        assert!(matches!(short.request(), Some(IoRequest::Read { offset: 100, len_max: 4, .. })));
        assert!(short.on_data(&[1, 2]).is_err());
    }
}
