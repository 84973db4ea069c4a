//! Files we write and read back are hostile until checked: a directory someone else can
//! write to may hold a planted symlink or record. Private directories, files created
//! without following symlinks, records read back only when they are ours.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The effective user id of this process.
pub fn my_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// A directory only we (and root) can change: it, and every symlink on the way to it,
/// owned by us or root, and it is not group- or world-writable. Files made in it cannot
/// be replaced or planted by another user.
pub fn check_private_dir(dir: &Path, what: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = my_uid();
    let refuse = |why: String| {
        Error::refused(
            format!(
                "{what} {}: {why}",
                crate::text::shown(&dir.display().to_string())
            ),
            "use a directory that only you can write to (e.g. mkdir -m 700 DIR); another user could plant files in this one",
        )
    };
    let absolute = std::path::absolute(dir).map_err(|e| refuse(e.to_string()))?;
    // Every symlink on the way: owned by us or root (a symlink someone else owns can be
    // pointed elsewhere at any time).
    let mut prefix = PathBuf::new();
    for part in absolute.components() {
        prefix.push(part);
        if let Ok(meta) = std::fs::symlink_metadata(&prefix)
            && meta.file_type().is_symlink()
            && meta.uid() != me
            && meta.uid() != 0
        {
            return Err(refuse(format!(
                "it is reached through the symlink {}, owned by uid {}",
                crate::text::shown(&prefix.display().to_string()),
                meta.uid()
            )));
        }
    }
    let meta = std::fs::metadata(dir).map_err(|e| refuse(e.to_string()))?;
    if !meta.is_dir() {
        return Err(refuse("not a directory".into()));
    }
    if meta.uid() != me {
        return Err(refuse(format!(
            "it is owned by uid {}, not by this user (uid {me})",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(format!(
            "it is {}-writable (mode {:o})",
            if meta.mode() & 0o002 != 0 {
                "world"
            } else {
                "group"
            },
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Create `path` (it must not exist; a symlink there is not followed), mode 0600.
pub fn create_new_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Replace `path` with `bytes` atomically: a new 0600 file beside it (never following a
/// symlink), then a rename over it (which replaces a planted symlink, not its target).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        rand::random::<u64>()
    ));
    let written = create_new_private(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// A regular file of ours (not a symlink, owned by us, not writable by others), opened
/// without following a symlink; `None` when it is missing or anything else.
pub fn open_own_file(path: &Path) -> Option<File> {
    open_checked(path, 0o022).ok()
}

/// `path` opened without following a symlink, when it is a regular file owned by us
/// with none of the `forbidden` mode bits (0o022: others may write; 0o077: others may
/// read or write); the error says why not.
fn open_checked(path: &Path, forbidden: u32) -> std::result::Result<File, String> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => "it is a symlink".to_owned(),
            _ => e.to_string(),
        })?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.uid() != my_uid() {
        return Err(format!(
            "it is owned by uid {}, not by this user",
            meta.uid()
        ));
    }
    if meta.mode() & forbidden != 0 {
        return Err(format!(
            "other users may {} it (mode {:o}; it must be {:o})",
            if forbidden & 0o044 != 0 {
                "read or write"
            } else {
                "write"
            },
            meta.mode() & 0o7777,
            0o666 & !forbidden,
        ));
    }
    Ok(file)
}

/// [`open_own_file`], read to a string (at most `limit` bytes).
pub fn read_own_file(path: &Path, limit: u64) -> Option<String> {
    let mut text = String::new();
    open_own_file(path)?
        .take(limit)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// A secret file (a key): a regular file of ours that no one else may read or write,
/// opened without following a symlink, at most `limit` bytes. The error says why not.
pub fn read_secret_file(path: &Path, limit: u64) -> std::result::Result<String, String> {
    let mut text = String::new();
    open_checked(path, 0o077)?
        .take(limit)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(text)
}
