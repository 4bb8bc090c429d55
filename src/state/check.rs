//! `cutover state check`: is the state file one that an apply wrote, or one
//! that git made by merging two branches?
//!
//! The state is committed, so two pull requests that both applied can each
//! carry a new state, and merging them can give: conflict markers (the file no
//! longer parses), a state whose serial is lower than one already committed
//! (the other side's changes silently dropped), a file with the serial of two
//! different applies (git merged their lines without a conflict: a state no
//! apply ever wrote), or a state of another lineage (one side ran `cutover
//! init` again). Each is found here, from the file and its git history, and
//! reported with the way back. Nothing is ever resolved silently: which side
//! matches the live world is for a person to decide.
//!
//! It also reports what an interrupted apply left beside the file: a journal
//! not yet folded into it (the file is behind what was done: what folding
//! changes, serial and records) and leftover files (temporary files, the
//! pause of an apply that no longer holds the lock). The check
//! folds and removes them as every command does (`state::open`), says so,
//! and still exits 1: the file was not the truth when the check began.

mod git;

use std::fmt;
use std::path::{Path, PathBuf};

use git::Git;

use super::journal::{Found, Problem};
use super::{from_bytes, Access, StateError};

/// What the check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The state file.
    pub path: PathBuf,
    /// The file's lineage and serial, when it parses.
    pub current: Option<Version>,
    /// The problems, empty when the state is healthy.
    pub findings: Vec<Finding>,
    /// How much history was compared.
    pub history: History,
}

/// One version of the state: its lineage and serial, and the commit that
/// holds it (`None`: the working file).
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// The state's lineage.
    pub lineage: String,
    /// The state's serial.
    pub serial: u64,
    /// The commit (short id and subject), or `None` for the file on disk.
    pub commit: Option<String>,
}

/// One side of a conflicted file.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    /// The label git wrote after the marker (`HEAD`, a branch name).
    pub label: String,
    /// That side's lineage and serial, or why it does not parse.
    pub parsed: Result<Version, String>,
}

/// A problem with the state file.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// Git left conflict markers: `(line, marker)` for each.
    ConflictMarkers {
        /// The 1-based line and the text of each marker line.
        markers: Vec<(usize, String)>,
        /// The side `git checkout --ours` keeps.
        ours: Side,
        /// The side `git checkout --theirs` keeps.
        theirs: Side,
    },
    /// The version this one was made from has another lineage.
    ForkedLineage {
        /// The earlier version.
        before: Version,
    },
    /// A committed version of the same lineage has a higher serial.
    SerialBackwards {
        /// The committed version with the highest serial.
        newer: Version,
    },
    /// Committed versions with this serial differ from the file: more than
    /// one apply wrote this serial, or the file was edited without a bump.
    SerialReused {
        /// The committed versions with the same lineage and serial.
        others: Vec<Version>,
    },
    /// A journal that an interrupted apply left, not folded into the file.
    UnfoldedJournal {
        /// The journal.
        journal: PathBuf,
        /// The file's serial, and the serial folding gives.
        serials: (u64, u64),
        /// The records folding changes (`router.public`).
        records: Vec<String>,
        /// Whether the check folded it.
        outcome: Outcome,
    },
    /// A journal that cannot be folded into this state file.
    UnusableJournal {
        /// The journal.
        journal: PathBuf,
        /// Why not.
        problem: Problem,
    },
    /// Files an interrupted cutover left beside the state: temporary files
    /// of a write, a journal that was empty or already folded, the pause of
    /// an apply that no longer holds the lock.
    Leftovers {
        /// The files.
        files: Vec<PathBuf>,
        /// Whether the check removed them.
        outcome: Outcome,
    },
}

/// What the check did about a journal or leftovers.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Folded or removed.
    Done,
    /// Left, and why (another run holds the lock, ...).
    Left(String),
}

/// How far the history was checked.
#[derive(Debug, Clone, PartialEq)]
pub enum History {
    /// This many committed versions of the file were compared.
    Checked(usize),
    /// Not checked: the file is not in a git work tree (or git is missing).
    NotInGit,
    /// Not checked: the file has conflict markers.
    Skipped,
}

/// Why the check could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// There is no state file.
    #[error("no state file at {}: nothing to check", .0.display())]
    Missing(PathBuf),
    /// The file cannot be read, or is not a state (other than conflicts).
    #[error(transparent)]
    State(#[from] StateError),
}

impl Report {
    /// Whether nothing was found.
    pub fn is_healthy(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Check the state file at `path` and, when it is in a git work tree, its
/// committed history.
pub fn check(path: &Path) -> Result<Report, CheckError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CheckError::Missing(path.to_owned()))
        }
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_owned(),
                source,
            }
            .into())
        }
    };
    if let Some(finding) = conflict_markers(path, &bytes) {
        return Ok(Report {
            path: path.to_owned(),
            current: None,
            findings: vec![finding],
            history: History::Skipped,
        });
    }
    let mut findings = left_beside(path)?;
    // The file as the fold left it.
    let bytes = std::fs::read(path).map_err(|source| StateError::Read {
        path: path.to_owned(),
        source,
    })?;
    let state = from_bytes(path, &bytes)?;
    let current = Version {
        lineage: state.lineage,
        serial: state.serial,
        commit: None,
    };
    let history = match Git::find(path) {
        Some(git) => {
            let versions = git.versions();
            let before = git.made_from(&versions, &bytes);
            findings.extend(compare(&current, &bytes, &versions, &before));
            History::Checked(versions.len())
        }
        None => History::NotInGit,
    };
    Ok(Report {
        path: path.to_owned(),
        current: Some(current),
        findings,
        history,
    })
}

/// What an interrupted apply left beside the state, as found before the
/// fold, with what the fold ([`super::open()`]) did about it.
fn left_beside(path: &Path) -> Result<Vec<Finding>, StateError> {
    let backend = super::backend::LocalFile::new(path);
    let pending = super::inspect(&backend)?;
    if pending.is_clean() {
        return Ok(Vec::new());
    }
    let opened = super::open(&backend, Access::Read)?;
    let left = |done: bool| match (&opened.note, done) {
        (_, true) => Outcome::Done,
        (Some(note), false) => Outcome::Left(note.reason()),
        (None, false) => Outcome::Left("it changed while the check ran".into()),
    };
    let mut findings = Vec::new();
    let mut files = pending.leftovers.clone();
    let journal = super::journal::path_for(path);
    match &pending.journal {
        Found::Absent => {}
        Found::Empty | Found::AlreadyFolded => files.insert(0, journal),
        Found::Unfolded(u) => findings.push(Finding::UnfoldedJournal {
            journal,
            serials: (u.from_serial, u.to_serial),
            records: u.records.clone(),
            outcome: left(opened.folded.is_some()),
        }),
        Found::Unusable(problem) => findings.push(Finding::UnusableJournal {
            journal,
            problem: problem.clone(),
        }),
    }
    if !files.is_empty() {
        let removed = files.iter().all(|f| opened.removed.contains(f));
        findings.push(Finding::Leftovers {
            files,
            outcome: left(removed),
        });
    }
    Ok(findings)
}

/// Marker lines, and each side rebuilt (the lines outside the conflicts
/// plus that side's lines) and parsed, so the report can say which side
/// holds which serial.
fn conflict_markers(path: &Path, bytes: &[u8]) -> Option<Finding> {
    #[derive(PartialEq)]
    enum In {
        Both,
        Ours,
        Base,
        Theirs,
    }
    let text = String::from_utf8_lossy(bytes);
    let (mut ours, mut theirs) = (String::new(), String::new());
    let (mut ours_label, mut theirs_label) = (String::new(), String::new());
    let mut markers = Vec::new();
    let mut at = In::Both;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let marker = |m: &str| line.starts_with(m);
        let label = |m: &str| line[m.len()..].trim().to_string();
        let next = if marker("<<<<<<<") {
            ours_label = label("<<<<<<<");
            Some(In::Ours)
        } else if marker("|||||||") && at == In::Ours {
            Some(In::Base)
        } else if marker("=======") && (at == In::Ours || at == In::Base) {
            Some(In::Theirs)
        } else if marker(">>>>>>>") {
            theirs_label = label(">>>>>>>");
            Some(In::Both)
        } else {
            None
        };
        if let Some(next) = next {
            markers.push((i + 1, line.trim_end().to_string()));
            at = next;
            continue;
        }
        match at {
            In::Both => {
                ours.push_str(line);
                theirs.push_str(line);
            }
            In::Ours => ours.push_str(line),
            In::Theirs => theirs.push_str(line),
            In::Base => {}
        }
    }
    if markers.is_empty() {
        return None;
    }
    let side = |label: String, text: &str| Side {
        label,
        parsed: from_bytes(path, text.as_bytes())
            .map(|s| Version {
                lineage: s.lineage,
                serial: s.serial,
                commit: None,
            })
            .map_err(|e| e.to_string()),
    };
    Some(Finding::ConflictMarkers {
        markers,
        ours: side(ours_label, &ours),
        theirs: side(theirs_label, &theirs),
    })
}

/// The findings from comparing the file with its committed versions and
/// with the versions it was made from.
fn compare(
    current: &Version,
    bytes: &[u8],
    versions: &[(Version, Vec<u8>)],
    before: &[Version],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    if let Some(before) = before.iter().find(|v| v.lineage != current.lineage) {
        findings.push(Finding::ForkedLineage {
            before: before.clone(),
        });
    }
    let same_lineage = versions
        .iter()
        .filter(|(v, _)| v.lineage == current.lineage);
    if let Some((newer, _)) = same_lineage
        .clone()
        .filter(|(v, _)| v.serial > current.serial)
        .max_by_key(|(v, _)| v.serial)
    {
        findings.push(Finding::SerialBackwards {
            newer: newer.clone(),
        });
    }
    let others: Vec<Version> = same_lineage
        .filter(|(v, b)| v.serial == current.serial && b.as_slice() != bytes)
        .map(|(v, _)| v.clone())
        .collect();
    if !others.is_empty() {
        findings.push(Finding::SerialReused { others });
    }
    findings
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lineage {}, serial {}", self.lineage, self.serial)?;
        match &self.commit {
            Some(c) => write!(f, " (commit {c})"),
            None => Ok(()),
        }
    }
}

const CONVERGE: &str = "then run `cutover plan --refresh-only` to see what the live world holds \
     that the state you kept does not, `cutover apply --refresh-only` to record it, and \
     `cutover plan` / `cutover apply` to converge; commit the state file";

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        if let (true, Some(current)) = (self.is_healthy(), &self.current) {
            let history = match self.history {
                History::Checked(n) => format!("{n} committed version(s) checked"),
                _ => "not in git: history not checked".to_string(),
            };
            return writeln!(f, "OK: state {path} ({current}; {history})");
        }
        writeln!(f, "state {path} needs attention:")?;
        for finding in &self.findings {
            writeln!(f)?;
            finding.describe(f, &path.to_string(), self.current.as_ref())?;
        }
        Ok(())
    }
}

impl Finding {
    fn describe(
        &self,
        f: &mut fmt::Formatter<'_>,
        path: &str,
        now: Option<&Version>,
    ) -> fmt::Result {
        let now = now.map_or_else(String::new, Version::to_string);
        match self {
            Finding::ConflictMarkers {
                markers,
                ours,
                theirs,
            } => {
                writeln!(f, "- git merge conflict markers: it was merged from two branches that both changed it")?;
                for (line, text) in markers {
                    writeln!(f, "    line {line}: {text}")?;
                }
                for (flag, side) in [("--ours", ours), ("--theirs", theirs)] {
                    match &side.parsed {
                        Ok(v) => writeln!(f, "    {flag} ({}): {v}", side.label)?,
                        Err(e) => writeln!(f, "    {flag} ({}): does not parse: {e}", side.label)?,
                    }
                }
                writeln!(
                    f,
                    "  to recover: {}, then `git add {path}`",
                    side_advice(path, ours, theirs)
                )?;
                writeln!(
                    f,
                    "  (during a rebase --ours and --theirs are swapped); {CONVERGE}"
                )
            }
            Finding::ForkedLineage { before } => {
                writeln!(f, "- forked lineage: this state ({now}) was made from a state of another lineage ({before}); one branch created a new state (`cutover init`) instead of using the committed one")?;
                writeln!(f, "  to recover: if the earlier lineage is the one that describes what runs, restore it with `git checkout {} -- {path}`; if the new one was meant, commit it after `cutover apply --refresh-only`; {CONVERGE}", before.commit.as_deref().and_then(|c| c.split(' ').next()).unwrap_or("<commit>"))
            }
            Finding::SerialBackwards { newer } => {
                writeln!(f, "- serial went backwards: this state ({now}) is older than a committed one ({newer}); the changes recorded after it were dropped, most likely by a merge that kept the other side")?;
                writeln!(f, "  to recover: if that version is the one applied last, restore it with `git checkout {} -- {path}`; {CONVERGE}", newer.commit.as_deref().and_then(|c| c.split(' ').next()).unwrap_or("<commit>"))
            }
            Finding::UnfoldedJournal {
                journal,
                serials: (from, to),
                records,
                outcome,
            } => {
                writeln!(f, "- unfolded journal: {} holds what an interrupted apply did after the state file was last written: serial {from} -> {to} ({})", journal.display(), records.join(", "))?;
                match outcome {
                    Outcome::Done => writeln!(
                        f,
                        "  folded now: the state file is at serial {to}; commit it"
                    ),
                    Outcome::Left(why) => writeln!(f, "  not folded: {why}"),
                }
            }
            Finding::UnusableJournal { journal, problem } => {
                writeln!(
                    f,
                    "- a journal that cannot be folded: {}: {problem}",
                    journal.display()
                )
            }
            Finding::Leftovers { files, outcome } => {
                let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
                writeln!(f, "- leftover files beside the state: {}", names.join(", "))?;
                match outcome {
                    Outcome::Done => writeln!(f, "  removed now"),
                    Outcome::Left(why) => writeln!(f, "  left alone: {why}"),
                }
            }
            Finding::SerialReused { others } => {
                writeln!(f, "- serial reused: this state ({now}) differs from what was committed with the same serial:")?;
                for v in others {
                    writeln!(f, "    {v}")?;
                }
                writeln!(f, "  two applies wrote this serial on different branches and git merged their lines (or the file was edited by hand): no apply ever wrote this file")?;
                writeln!(f, "  to recover: keep the version applied last (`git checkout <commit> -- {path}`); {CONVERGE}")
            }
        }
    }
}

/// Which side to keep, when the sides say so; never a silent guess.
fn side_advice(path: &str, ours: &Side, theirs: &Side) -> String {
    match (&ours.parsed, &theirs.parsed) {
        (Ok(o), Ok(t)) if o.lineage != t.lineage => format!(
            "the two sides have different lineages: one branch created a new state; keep the \
             one that describes what runs (`git checkout --ours -- {path}` or `git checkout \
             --theirs -- {path}`)"
        ),
        (Ok(o), Ok(t)) if o.serial != t.serial => {
            let (flag, v) = if o.serial > t.serial {
                ("--ours", o)
            } else {
                ("--theirs", t)
            };
            format!(
                "keep the side with the higher serial, normally the one applied last: `git \
                 checkout {flag} -- {path}` (serial {}), unless you know the other side was \
                 applied later",
                v.serial
            )
        }
        (Ok(_), Ok(_)) => format!(
            "both sides have the same serial: both branches applied from the same state and \
             neither holds all the changes; keep the one applied last (`git checkout --ours -- \
             {path}` or `--theirs`)"
        ),
        _ => format!(
            "keep one side whole (`git checkout --ours -- {path}` or `git checkout --theirs -- \
             {path}`); never edit the markers out by hand"
        ),
    }
}
