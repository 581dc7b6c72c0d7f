//! Which paths an index file may be read from or saved to: regular files only.
//!
//! Opening a FIFO for reading blocks until a writer appears (forever, if none does), and a
//! character device may stream bytes without end or have side effects when opened; a save
//! renamed over either would replace it. So every reader opens through [`open_regular`], which
//! refuses anything but a regular file before an `open` can block, and every save resolves its
//! target through [`save_target`], which refuses anything but a regular file or a new name.
//! Symbolic links are followed both ways: a load reads the file a link points to, and a save
//! writes through the link (the link stays, its target is replaced atomically).

use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// Symbolic links followed at most when resolving a save target (Linux's own limit).
const MAX_LINKS: usize = 40;

/// What a file is, in messages ("a FIFO", "a directory", …).
pub fn describe(metadata: &Metadata) -> &'static str {
    let kind = metadata.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

fn not_regular(path: &Path, verb: &str, metadata: &Metadata) -> StoreError {
    StoreError::Io(format!(
        "cannot {verb} {}: it is {}, not a regular file",
        path.display(),
        describe(metadata)
    ))
}

/// Opens `path` (following symbolic links) for reading, refusing anything but a regular file
/// without blocking: the type is checked with `stat` first (nothing is opened for a FIFO or a
/// device), the open itself is non-blocking and takes no controlling terminal, and the type is
/// checked again on the open file (the path may have been swapped in between). `verb` names
/// the operation in messages ("read", "view").
pub fn open_regular(path: &Path, verb: &str) -> Result<File, StoreError> {
    let io = |e: io::Error| StoreError::Io(format!("cannot {verb} {}: {e}", path.display()));
    let before = std::fs::metadata(path).map_err(io)?;
    if !before.is_file() {
        return Err(not_regular(path, verb, &before));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path).map_err(io)?;
    let after = file.metadata().map_err(io)?;
    if !after.is_file() {
        return Err(not_regular(path, verb, &after));
    }
    #[cfg(unix)]
    clear_nonblocking(&file).map_err(io)?;
    Ok(file)
}

/// Regular files ignore `O_NONBLOCK`, but the descriptor should say what it is.
#[cfg(unix)]
fn clear_nonblocking(file: &File) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is an open descriptor owned by `file` for the duration of both calls.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above; only the status flags change.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The path a save of `path` writes: `path` itself when it names a regular file or nothing yet;
/// the final target of a chain of symbolic links (so the links stay and point to the new
/// file); an error for anything else (a FIFO, a device, a directory, a socket, or a link to
/// one), before anything is written.
pub fn save_target(path: &Path) -> Result<PathBuf, StoreError> {
    let mut target = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        match std::fs::symlink_metadata(&target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(target),
            Err(e) => {
                return Err(StoreError::Io(format!(
                    "cannot save {}: {e}",
                    path.display()
                )))
            }
            Ok(m) if m.is_file() => return Ok(target),
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&target)
                    .map_err(|e| StoreError::Io(format!("cannot save {}: {e}", path.display())))?;
                // A relative link is relative to the folder holding the link.
                target = match target.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            Ok(m) => {
                let shown = if target == path {
                    String::new()
                } else {
                    format!(" (a link to {})", target.display())
                };
                return Err(StoreError::Io(format!(
                    "cannot save {}{shown}: it is {}, not a regular file",
                    path.display(),
                    describe(&m)
                )));
            }
        }
    }
    Err(StoreError::Io(format!(
        "cannot save {}: more than {MAX_LINKS} symbolic links",
        path.display()
    )))
}
