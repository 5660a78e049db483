//! An events file as capture writes it: the CSV header, then rows, as a chain of complete gzip
//! members (one per flush). The replay reader decodes the chain as one stream
//! (`MultiGzDecoder`). A capture that is killed can leave at most one member half-written at
//! the end; [`scan`] finds where the complete members stop, so resuming can cut the unfinished
//! write off and append after the last complete row.

use flate2::Compression;
use flate2::bufread::GzDecoder;
use flate2::write::GzEncoder;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::path::Path;

/// The native events header, in the column order capture writes.
pub const HEADER: &str = "ts_ms,symbol,kind,bid,bid_qty,ask,ask_qty,price,qty,side";

/// A line longer than this is not something capture wrote.
const MAX_LINE: usize = 1 << 20;

/// What [`scan`] found in an events file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The file starts with the gzip magic (an empty file counts as gzip).
    pub gzip: bool,
    /// Bytes of complete gzip members from the start of the file.
    pub good_bytes: u64,
    pub file_bytes: u64,
    /// The first line of the complete members (the CSV header), trimmed.
    pub header: Option<String>,
    /// Non-blank lines after the header in the complete members.
    pub rows: u64,
    /// The last non-blank line after the header, trimmed.
    pub last_row: Option<String>,
    /// The complete members' text is empty or ends with a newline.
    pub ends_with_newline: bool,
    /// Why the bytes after `good_bytes` could not be decoded; `None` for a clean file.
    pub damage: Option<String>,
}

impl Scan {
    /// Bytes after the last complete member.
    pub fn tail_bytes(&self) -> u64 {
        self.file_bytes.saturating_sub(self.good_bytes)
    }

    /// The `ts_ms` of the last row, found through the header's column names.
    ///
    /// # Errors
    /// A header without `ts_ms`, or a last row whose `ts_ms` is not an integer.
    pub fn last_ts(&self) -> Result<Option<i64>, String> {
        let (Some(header), Some(row)) = (&self.header, &self.last_row) else {
            return Ok(None);
        };
        let idx = header
            .split(',')
            .position(|h| h.trim().eq_ignore_ascii_case("ts_ms"))
            .ok_or("header: no ts_ms column")?;
        let field = row.split(',').nth(idx).unwrap_or("").trim();
        field
            .parse()
            .map(Some)
            .map_err(|_| format!("last row: ts_ms is not an integer: {field:?}"))
    }
}

/// Lines seen so far. Cloned before each member, so a damaged member leaves no trace.
#[derive(Debug, Clone, Default)]
struct Lines {
    partial: Vec<u8>,
    header: Option<String>,
    rows: u64,
    last_row: Option<String>,
    any: bool,
}

impl Lines {
    fn feed(&mut self, chunk: &[u8]) -> Result<(), String> {
        self.any |= !chunk.is_empty();
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            self.partial.extend_from_slice(&rest[..nl]);
            self.end_line()?;
            rest = &rest[nl + 1..];
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() > MAX_LINE {
            return Err(format!("a line longer than {MAX_LINE} bytes"));
        }
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), String> {
        let line = std::str::from_utf8(&self.partial)
            .map_err(|_| "not valid UTF-8 text".to_string())?
            .trim()
            .to_string();
        self.partial.clear();
        if self.header.is_none() {
            self.header = Some(line);
        } else if !line.is_empty() {
            self.rows += 1;
            self.last_row = Some(line);
        }
        Ok(())
    }
}

/// Reads `path` member by member. Damage (a member that does not decode to its end, or text
/// that is not UTF-8) is reported in [`Scan::damage`], not as an error.
///
/// # Errors
/// The file cannot be opened or read.
pub fn scan(path: &Path) -> Result<Scan, String> {
    let io = |e: std::io::Error| format!("{}: cannot read: {e}", path.display());
    let file = File::open(path).map_err(io)?;
    let file_bytes = file.metadata().map_err(io)?.len();
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let gzip = {
        let head = reader.fill_buf().map_err(io)?;
        head.is_empty() || head.starts_with(&[0x1f, 0x8b])
    };
    let mut lines = Lines::default();
    let mut good_bytes = 0;
    let mut damage = None;
    let mut chunk = vec![0u8; 64 * 1024];
    while gzip && !reader.fill_buf().map_err(io)?.is_empty() {
        let mut trial = lines.clone();
        let mut member = GzDecoder::new(&mut reader);
        let outcome = loop {
            match member.read(&mut chunk) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    if let Err(e) = trial.feed(&chunk[..n]) {
                        break Err(e);
                    }
                }
                Err(e) => break Err(e.to_string()),
            }
        };
        if let Err(e) = outcome {
            damage = Some(e);
            break;
        }
        lines = trial;
        good_bytes = reader.stream_position().map_err(io)?;
    }
    Ok(Scan {
        gzip,
        good_bytes,
        file_bytes,
        ends_with_newline: lines.partial.is_empty(),
        // A header line not ended by a newline is still the header.
        header: lines.header.clone().or_else(|| {
            (!lines.partial.is_empty())
                .then(|| String::from_utf8_lossy(&lines.partial).trim().to_string())
        }),
        rows: lines.rows,
        last_row: lines.last_row,
        damage,
    })
}

/// One gzip member holding `text`.
///
/// # Errors
/// Only from the in-memory encoder.
pub fn member(text: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(
        Vec::with_capacity(text.len() / 4 + 64),
        Compression::default(),
    );
    gz.write_all(text)?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, members: &[&str]) -> Vec<u64> {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for m in members {
            bytes.extend(member(m.as_bytes()).unwrap());
            ends.push(bytes.len() as u64);
        }
        std::fs::write(path, &bytes).unwrap();
        ends
    }

    #[test]
    fn a_chain_of_members_reads_as_one_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.csv.gz");
        let ends = write(
            &p,
            &[
                &format!("{HEADER}\n"),
                "1,BTCTRY,Q,1,1,2,1,,,\n",
                "2,BTCTRY,T,,,,,2,1,buy\n\n",
            ],
        );
        let s = scan(&p).unwrap();
        assert!(s.gzip && s.damage.is_none() && s.ends_with_newline);
        assert_eq!(s.good_bytes, ends[2]);
        assert_eq!(s.tail_bytes(), 0);
        assert_eq!(s.header.as_deref(), Some(HEADER));
        assert_eq!(s.rows, 2);
        assert_eq!(s.last_ts().unwrap(), Some(2));
    }

    #[test]
    fn a_half_written_last_member_is_damage_after_the_good_ones() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.csv.gz");
        let ends = write(
            &p,
            &[
                &format!("{HEADER}\n1,BTCTRY,Q,1,1,2,1,,,\n"),
                "7,BTCTRY,Q,1,1,2,1,,,\n",
            ],
        );
        for cut in [ends[0] + 1, ends[0] + 12, ends[1] - 3] {
            let bytes = std::fs::read(&p).unwrap();
            let q = dir.path().join(format!("cut{cut}.csv.gz"));
            std::fs::write(&q, &bytes[..usize::try_from(cut).unwrap()]).unwrap();
            let s = scan(&q).unwrap();
            assert!(s.damage.is_some(), "cut at {cut}");
            assert_eq!(s.good_bytes, ends[0], "cut at {cut}");
            assert_eq!(s.rows, 1);
            assert_eq!(s.last_ts().unwrap(), Some(1));
        }
    }

    #[test]
    fn trailing_zeros_and_plain_text_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.csv.gz");
        let ends = write(&p, &[&format!("{HEADER}\n")]);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.extend([0u8; 512]);
        std::fs::write(&p, &bytes).unwrap();
        let s = scan(&p).unwrap();
        assert_eq!((s.good_bytes, s.tail_bytes(), s.rows), (ends[0], 512, 0));
        assert!(s.damage.is_some());

        let plain = dir.path().join("e.csv");
        std::fs::write(&plain, format!("{HEADER}\n1,BTCTRY,Q,1,1,2,1,,,\n")).unwrap();
        assert!(!scan(&plain).unwrap().gzip);
        let empty = dir.path().join("empty.csv.gz");
        std::fs::write(&empty, b"").unwrap();
        let s = scan(&empty).unwrap();
        assert!(s.gzip && s.header.is_none() && s.damage.is_none());
    }

    #[test]
    fn the_last_ts_follows_the_header_and_rejects_garbage() {
        let mut s = Scan {
            gzip: true,
            good_bytes: 0,
            file_bytes: 0,
            header: Some("symbol,ts_ms,kind".into()),
            rows: 1,
            last_row: Some("BTCTRY,42,Q".into()),
            ends_with_newline: true,
            damage: None,
        };
        assert_eq!(s.last_ts().unwrap(), Some(42));
        s.last_row = Some("BTCTRY,soon,Q".into());
        assert!(s.last_ts().unwrap_err().contains("not an integer"));
        s.header = Some("symbol,kind".into());
        assert!(s.last_ts().unwrap_err().contains("no ts_ms"));
    }
}
