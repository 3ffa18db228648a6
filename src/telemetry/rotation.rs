//! The rotated log file: `prom-metrics-app.log` in `LOG_DIR`, renamed to `.1` before a line that
//! would take it past its size limit (`.1` to `.2`, and so on), with [`KEEP_FILES`] old files
//! kept, as the original's `RotatingFileHandler(maxBytes=..., backupCount=10)` does.
//!
//! Written by hand: the crates that rotate by size (`file-rotate`, `logroller`, `rolling-file`,
//! `log4rs`) all bring `chrono`, and most of them `flate2`, for dated names and compression this
//! app does not use.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
};

/// Name of the log file inside `LOG_DIR`.
pub const LOG_FILE: &str = "prom-metrics-app.log";
/// Rotated files kept besides the current one, as the original's `backupCount=10`.
pub const KEEP_FILES: usize = 10;

/// The log file in a folder, rotated by size; a line is never split across two files.
#[derive(Debug)]
pub struct RotatingFile {
    dir: PathBuf,
    file: File,
    size: u64,
    limit: u64,
    /// Whether the last byte written ends a line: rotation waits for the end of a line.
    at_line_start: bool,
}

impl RotatingFile {
    /// Opens (or creates) [`LOG_FILE`] in `dir` for appending; it is rotated before a line that
    /// would take it past `limit` bytes.
    pub fn open(dir: &Path, limit: u64) -> io::Result<Self> {
        let file = append(&dir.join(LOG_FILE))?;
        let size = file.metadata()?.len();
        Ok(Self {
            dir: dir.to_path_buf(),
            file,
            size,
            limit,
            at_line_start: true,
        })
    }

    /// The current file (0) or the `n`th older one.
    fn path(&self, n: usize) -> PathBuf {
        match n {
            0 => self.dir.join(LOG_FILE),
            n => self.dir.join(format!("{LOG_FILE}.{n}")),
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        // The oldest file is replaced by the one before it.
        for n in (1..KEEP_FILES).rev() {
            match std::fs::rename(self.path(n), self.path(n + 1)) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        std::fs::rename(self.path(0), self.path(1))?;
        self.file = append(&self.path(0))?;
        self.size = 0;
        Ok(())
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Write for RotatingFile {
    /// Writes the whole lines of `buf` that fit under the limit, and at least its first line.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let first_line = buf
            .iter()
            .position(|&b| b == b'\n')
            .map_or(buf.len(), |i| i + 1);
        if self.at_line_start && self.size > 0 && self.size + first_line as u64 > self.limit {
            self.rotate()?;
        }
        let room = usize::try_from(self.limit.saturating_sub(self.size)).unwrap_or(usize::MAX);
        let end = if buf.len() <= room {
            buf.len()
        } else {
            buf[..room]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(first_line, |i| (i + 1).max(first_line))
        };
        let written = self.file.write(&buf[..end])?;
        self.size += written as u64;
        if written > 0 {
            self.at_line_start = buf[written - 1] == b'\n';
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_ten_files_under_the_limit_and_never_splits_a_line() {
        let dir = std::env::temp_dir().join(format!("pma-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut file = RotatingFile::open(&dir, 1000).unwrap();

        // 600 lines of 70 to 130 bytes, a few at a time: about 60 kB, so 60 rotations at 1 kB.
        let lines: Vec<String> = (0..600)
            .map(|i| format!("line {i:04} {}\n", "x".repeat(60 + (i * 7) % 60)))
            .collect();
        for chunk in lines.chunks(7) {
            file.write_all(chunk.concat().as_bytes()).unwrap();
        }
        file.flush().unwrap();
        drop(file);

        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), KEEP_FILES + 1, "{names:?}");
        assert!(names.contains(&LOG_FILE.to_string()), "{names:?}");
        for name in &names {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            assert!(text.len() <= 1000, "{name} has {} bytes", text.len());
            assert!(text.ends_with('\n'), "{name} ends mid-line");
            for line in text.lines() {
                assert!(
                    line.starts_with("line ") && line.ends_with('x'),
                    "{name}: split line {line:?}"
                );
            }
        }
        let newest = std::fs::read_to_string(dir.join(LOG_FILE)).unwrap();
        assert!(
            newest.ends_with(&lines[599]),
            "the last line is in the current file"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_line_longer_than_the_limit_is_written_whole_in_a_file_of_its_own() {
        let dir = std::env::temp_dir().join(format!("pma-rotate-long-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut file = RotatingFile::open(&dir, 100).unwrap();
        let long = format!("{}\n", "y".repeat(250));

        file.write_all(b"short\n").unwrap();
        file.write_all(long.as_bytes()).unwrap();
        file.write_all(b"after\n").unwrap();
        drop(file);

        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(read(&format!("{LOG_FILE}.2")), "short\n");
        assert_eq!(read(&format!("{LOG_FILE}.1")), long);
        assert_eq!(read(LOG_FILE), "after\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
