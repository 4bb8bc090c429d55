//! The one way cutover replaces a file with new bytes — the state and saved
//! plans in the core, HAProxy's map file, nginx's include — so that a crash
//! at any moment leaves either the old file or the new one, never half of
//! one. In this crate because providers depend on it alone.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// How [`replace`] names and makes the new file.
#[derive(Debug, Clone, Copy)]
pub struct Replace<'a> {
    /// The temporary file is `<temp_prefix>XXXXXX.tmp` beside the file (six
    /// random characters): name it so that whoever cleans up leftovers can
    /// tell its own, and so that no glob of the program reading the
    /// directory (nginx's `include *.conf`) matches it.
    pub temp_prefix: &'a str,
    /// The mode of a file that did not exist; a replaced file keeps its mode
    /// (and, when cutover may, its owner).
    pub new_mode: u32,
    /// Replace the file a symlink points to, rather than the symlink.
    pub follow_symlink: bool,
}

/// Replace `path` with `bytes`: a temporary file in the same directory
/// (rename(2) is atomic only within one file system) written, fsynced,
/// renamed over the file, then the directory fsynced (without it the rename
/// may not survive a power loss).
pub fn replace(path: &Path, bytes: &[u8], how: &Replace<'_>) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let target: PathBuf = if how.follow_symlink {
        fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    } else {
        path.to_path_buf()
    };
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(how.temp_prefix)
        .suffix(".tmp")
        .rand_bytes(6)
        .tempfile_in(dir)?;
    match fs::metadata(&target) {
        Ok(old) => {
            temp.as_file().set_permissions(old.permissions())?;
            // Only root may give a file away; as the file's owner this
            // changes nothing, and otherwise the copied mode keeps it
            // readable by whoever read it before.
            let _ = std::os::unix::fs::fchown(
                temp.as_file(),
                Some(std::os::unix::fs::MetadataExt::uid(&old)),
                Some(std::os::unix::fs::MetadataExt::gid(&old)),
            );
        }
        Err(_) => temp
            .as_file()
            .set_permissions(fs::Permissions::from_mode(how.new_mode))?,
    }
    temp.write_all(bytes)?;
    temp.flush()?;
    temp.as_file().sync_all()?;
    temp.persist(&target).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_file_is_replaced_whole_keeps_its_mode_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.map");
        let how = Replace {
            temp_prefix: ".live.map.cutover-",
            new_mode: 0o640,
            follow_symlink: false,
        };
        replace(&path, b"one\n", &how).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o604)).unwrap();
        let inode = fs::metadata(&path).unwrap().ino();
        replace(&path, b"two\n", &how).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two\n");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o604);
        assert_ne!(
            fs::metadata(&path).unwrap().ino(),
            inode,
            "renamed, not rewritten"
        );
        assert_eq!(names(dir.path()), ["live.map"]);
    }

    #[test]
    fn a_symlink_is_followed_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.conf");
        let link = dir.path().join("link.conf");
        fs::write(&real, "old").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut how = Replace {
            temp_prefix: ".x.",
            new_mode: 0o644,
            follow_symlink: true,
        };
        replace(&link, b"new", &how).unwrap();
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        how.follow_symlink = false;
        replace(&link, b"newer", &how).unwrap();
        assert!(!fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
    }
}
