//! Process titles: what `ps` shows for the master and the workers (`rustgun: master [NAME]`).
//!
//! Linux has no call to set a process's command line: `/proc/PID/cmdline` (and so `ps`) reads the
//! memory where the kernel laid out `argv` at exec time. So the title is written over that memory, as
//! nginx and setproctitle(3) do: the bounds come from `/proc/self/stat` (fields 48–49, `arg_start` and
//! `arg_end`), the area is checked to hold exactly what `/proc/self/cmdline` reports before anything
//! is written, and a title longer than the original arguments is cut. `comm` (the name `top` and
//! `ps -o comm` show) is set too, with `PR_SET_NAME` (15 bytes at most).
//!
//! Rust's standard library reads `argv` lazily (`std::env::args`), so everything that needs the
//! original arguments takes its copy before the first title is set ([`crate::arbiter`] does).

use std::io;

/// Sets this process's title (`ps`'s COMMAND column) and its `comm` name.
pub fn set(title: &str, comm: &str) -> io::Result<()> {
    let _ = nix::sys::prctl::set_name(&std::ffi::CString::new(comm).unwrap_or_default());
    let (start, end) = argv_area()?;
    let cmdline = std::fs::read("/proc/self/cmdline")?;
    let len = end - start;
    if cmdline.len() != len || len == 0 {
        return Err(io::Error::other(format!(
            "the argv area ({len} bytes) does not match /proc/self/cmdline ({} bytes)",
            cmdline.len()
        )));
    }
    // SAFETY: [start, end) is this process's argv area as the kernel reports it: mapped, writable
    // (the initial stack) and `len` bytes long. Its contents were just read back through
    // /proc/self/cmdline, so it is the area we think it is. No Rust reference points into it: the
    // standard library copies argv when `std::env::args` is called, and we copied ours before.
    let area = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, len) };
    if area != cmdline.as_slice() {
        return Err(io::Error::other("the argv area does not hold this process's arguments"));
    }
    // Leave the last byte a NUL: the kernel then reports the area as it is, not as a title that ran
    // over into the environment.
    let n = title.len().min(len - 1);
    area[..n].copy_from_slice(&title.as_bytes()[..n]);
    area[n..].fill(0);
    Ok(())
}

/// `arg_start` and `arg_end` from `/proc/self/stat`.
fn argv_area() -> io::Result<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let bad = || io::Error::other("cannot read arg_start/arg_end from /proc/self/stat");
    // Fields after the parenthesised command start at field 3; arg_start is field 48.
    let rest = &stat[stat.rfind(')').ok_or_else(bad)? + 2..];
    let mut fields = rest.split_whitespace().skip(48 - 3);
    let mut next = || fields.next().and_then(|f| f.parse::<usize>().ok()).ok_or_else(bad);
    let (start, end) = (next()?, next()?);
    if end <= start {
        return Err(bad());
    }
    Ok((start, end))
}
