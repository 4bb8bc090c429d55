//! The remote of the git backend as git is given it and as people see it.
//!
//! `repo` is what `git push` takes: a URL (`https://`, `ssh://`, `git://`,
//! `file://`), the scp-like `user@host:path`, or a local path. A relative
//! local path is read against the configuration directory, not against
//! wherever cutover happens to run. A URL may carry a password
//! (`https://ci:TOKEN@host/team/state.git`): it is given to git but never
//! shown, and removed from git's own messages before cutover repeats them.
//!
//! The `url` crate is not used for this: it does not parse git's scp-like
//! form, and all that is needed is the user-info part of the authority.

use std::path::Path;

/// A git remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Remote {
    /// As git is given it: the URL, or the local path made absolute.
    pub arg: String,
    /// In messages: as configured, without a password.
    pub shown: String,
    /// The URL's password, kept out of every message.
    secret: Option<String>,
}

impl Remote {
    /// The remote `repo`, as configured in the directory `dir`.
    pub fn new(repo: &str, dir: &Path) -> Remote {
        if is_url(repo) {
            let (shown, secret) = split_password(repo);
            return Remote {
                arg: repo.to_owned(),
                shown,
                secret,
            };
        }
        let path = Path::new(repo);
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            dir.join(path)
        };
        Remote {
            arg: absolute.to_string_lossy().into_owned(),
            shown: repo.to_owned(),
            secret: None,
        }
    }

    /// `text` (a message of git's) with the password replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        match &self.secret {
            Some(secret) => text.replace(secret.as_str(), "***"),
            None => text.to_owned(),
        }
    }
}

/// Whether `repo` is a URL rather than a local path, by git's rule: it has
/// a scheme, or a colon before any slash (`host:path`, `user@host:path`).
fn is_url(repo: &str) -> bool {
    if repo.contains("://") {
        return true;
    }
    match repo.find(':') {
        Some(i) => !repo[..i].contains('/'),
        None => false,
    }
}

/// `url` without the password of its user-info, and the password.
fn split_password(url: &str) -> (String, Option<String>) {
    let unchanged = || (url.to_owned(), None);
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return unchanged();
    };
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    let authority = &url[start..end];
    let Some(at) = authority.rfind('@') else {
        return unchanged();
    };
    let Some(colon) = authority[..at].find(':') else {
        return unchanged();
    };
    let password = &authority[colon + 1..at];
    let shown = format!(
        "{}{}{}",
        &url[..start + colon],
        &authority[at..],
        &url[end..]
    );
    (shown, Some(password.to_owned()).filter(|p| !p.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        let r = Remote::new(
            "https://ci:s3cr3t@git.example.com/team/state.git",
            Path::new("/cfg"),
        );
        assert_eq!(r.arg, "https://ci:s3cr3t@git.example.com/team/state.git");
        assert_eq!(r.shown, "https://ci@git.example.com/team/state.git");
        assert_eq!(
            r.scrub("fatal: unable to access 'https://ci:s3cr3t@git.example.com/': 403"),
            "fatal: unable to access 'https://ci:***@git.example.com/': 403"
        );
        // A password with an `@` in it, and no path.
        let r = Remote::new("https://u:p@ss@host", Path::new("/cfg"));
        assert_eq!(r.shown, "https://u@host");
        assert_eq!(r.scrub("x p@ss y"), "x *** y");
        // An empty password: nothing to hide, the colon goes.
        let r = Remote::new("https://user:@host/x.git", Path::new("/cfg"));
        assert_eq!(r.shown, "https://user@host/x.git");
        assert_eq!(r.scrub("https://user:@host"), "https://user:@host");
    }

    #[test]
    fn urls_without_a_password_are_shown_as_they_are() {
        for url in [
            "https://git.example.com/team/state.git",
            "ssh://git@git.example.com:2222/team/state.git",
            "git://127.0.0.1:9418/state.git",
            "file:///srv/git/state.git",
            "git@github.com:team/state.git",
            "https://token@host/x.git",
        ] {
            let r = Remote::new(url, Path::new("/cfg"));
            assert_eq!((r.arg.as_str(), r.shown.as_str()), (url, url), "{url}");
            assert_eq!(r.scrub(url), url);
        }
    }

    #[test]
    fn a_relative_path_is_read_against_the_configuration_directory() {
        let r = Remote::new("../state.git", Path::new("/work/deploy"));
        assert_eq!(r.arg, "/work/deploy/../state.git");
        assert_eq!(r.shown, "../state.git");
        let r = Remote::new("/srv/state.git", Path::new("/work/deploy"));
        assert_eq!(r.arg, "/srv/state.git");
        // A colon after a slash is a path, as git reads it.
        let r = Remote::new("./a:b/state.git", Path::new("/w"));
        assert_eq!(r.arg, "/w/./a:b/state.git");
    }
}
