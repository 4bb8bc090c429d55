//! What `/proc` says about a process: whether it runs, and since when.
//!
//! A pid alone does not identify a process: the kernel reuses pids. cutover
//! therefore records the pid together with the process's start time (field 22
//! of `/proc/PID/stat`, in clock ticks since boot), and only treats a process
//! as the one it started when both match. A zombie has exited and counts as
//! gone: it is only waiting for its parent to collect its exit status.

use std::fs;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};

/// The state of a pid as `/proc` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidStatus {
    /// No such process, or it has exited and is a zombie.
    Gone,
    /// A live process with this start time (clock ticks since boot).
    Running {
        /// Field 22 of `/proc/PID/stat`.
        start_time: u64,
    },
}

/// The fields of `/proc/PID/stat` cutover needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    state: char,
    pgrp: i32,
    start_time: u64,
}

/// Parse the text of `/proc/PID/stat`.
///
/// The second field is the command name in parentheses, and may itself hold
/// spaces and parentheses, so the fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let after_comm = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // fields[0] is field 3 (state), so field N is fields[N - 3].
    Some(Stat {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// Read `/proc/PID/stat`, or `None` when there is no such process.
fn read_stat(pid: i32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The state of `pid` now.
pub fn pid_status(pid: i32) -> PidStatus {
    match read_stat(pid) {
        Some(stat) if stat.state != 'Z' && stat.state != 'X' => PidStatus::Running {
            start_time: stat.start_time,
        },
        _ => PidStatus::Gone,
    }
}

/// Whether `pid` is a live (not zombie) process started at `start_time`
/// (clock ticks since boot, field 22 of `/proc/PID/stat`). With
/// `start_time` `None`, any live process with that pid counts.
pub fn is_alive(pid: i32, start_time: Option<u64>) -> bool {
    match pid_status(pid) {
        PidStatus::Running { start_time: actual } => start_time.is_none_or(|s| s == actual),
        PidStatus::Gone => false,
    }
}

/// The live (not zombie) members of process group `pgid`.
pub(crate) fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            read_stat(pid).is_some_and(|s| s.pgrp == pgid && s.state != 'Z' && s.state != 'X')
        })
        .collect()
}

/// Whether process group `pgid` has no live (not zombie) member. Cheap in
/// the two common cases: while the leader itself lives (a member: no scan),
/// and once the group is gone (`kill(-pgid, 0)` fails with ESRCH); only
/// a group whose leader has exited but which may still hold members, or
/// only zombies, is looked for in every process of `/proc`. Stopping N
/// processes, polled every 50 ms, scanned all of `/proc` at every poll.
pub(crate) fn group_is_empty(pgid: i32) -> bool {
    if read_stat(pgid).is_some_and(|s| s.pgrp == pgid && s.state != 'Z' && s.state != 'X') {
        return false;
    }
    if let Err(nix::errno::Errno::ESRCH) =
        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None)
    {
        return true;
    }
    group_members(pgid).is_empty()
}

/// The variable whose entry (`CUTOVER_OWNER=DIR#NAME`) marks the processes
/// cutover starts as an environment's (lifecycle::owner_entry).
pub(crate) const OWNER_VAR: &str = "CUTOVER_OWNER";

/// Live process-group leaders whose environment holds exactly `entry`
/// (`CUTOVER_OWNER=value`), with their start times. cutover marks each
/// process it starts with its owner, so a process started by an apply that
/// was killed before it could record the pid can still be found.
///
/// Finding them reads every process of `/proc` (and the environment of
/// every group leader), so one scan is shared by the callers that ask while
/// it runs (N deploys at once each scanned `/proc`, where N of them are
/// processes: O(N²) reads). A caller takes only a scan that started after
/// it asked, so it sees every process that was there when it asked, as a
/// scan of its own would.
pub(crate) fn leaders_with_env(entry: &str) -> Vec<(i32, u64)> {
    debug_assert!(entry.starts_with(OWNER_VAR));
    shared_scan()
        .iter()
        .filter(|l| l.owner.as_deref() == Some(entry.as_bytes()))
        .map(|l| (l.pid, l.start_time))
        .collect()
}

/// A live process-group leader, and its owner entry if it has one.
struct Leader {
    pid: i32,
    start_time: u64,
    owner: Option<Vec<u8>>,
}

/// Every live process-group leader in `/proc`.
fn scan_leaders() -> Vec<Leader> {
    SCANS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let prefix = format!("{OWNER_VAR}=");
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = read_stat(pid)?;
            if stat.pgrp != pid || stat.state == 'Z' || stat.state == 'X' {
                return None;
            }
            let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
            let owner = environ
                .split(|b| *b == 0)
                .find(|e| e.starts_with(prefix.as_bytes()))
                .map(<[u8]>::to_vec);
            Some(Leader {
                pid,
                start_time: stat.start_time,
                owner,
            })
        })
        .collect()
}

/// How many scans of `/proc` for leaders this process made (for tests).
static SCANS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[derive(Default)]
struct ScanState {
    /// How many scans have started.
    started: u64,
    /// Whether one runs now.
    running: bool,
    /// The last one done: its number and what it found.
    last: Option<(u64, Arc<Vec<Leader>>)>,
}

/// A scan that started after this call (see [`leaders_with_env`]): a new
/// one, or the one another caller started meanwhile.
fn shared_scan() -> Arc<Vec<Leader>> {
    static SHARED: OnceLock<(Mutex<ScanState>, Condvar)> = OnceLock::new();
    let (state, done) = SHARED.get_or_init(Default::default);
    let lock = || state.lock().unwrap_or_else(PoisonError::into_inner);
    let mut st = lock();
    let wanted = st.started + 1;
    loop {
        if let Some((n, leaders)) = &st.last {
            if *n >= wanted {
                return Arc::clone(leaders);
            }
        }
        if !st.running {
            st.started += 1;
            st.running = true;
            let n = st.started;
            drop(st);
            // Whatever happens in the scan, the next caller may start one.
            struct Running<'a>(&'a Mutex<ScanState>, &'a Condvar);
            impl Drop for Running<'_> {
                fn drop(&mut self) {
                    self.0
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .running = false;
                    self.1.notify_all();
                }
            }
            let running = Running(state, done);
            let leaders = Arc::new(scan_leaders());
            lock().last = Some((n, Arc::clone(&leaders)));
            drop(running);
            return leaders;
        }
        st = done.wait(st).unwrap_or_else(PoisonError::into_inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_whose_name_has_spaces_and_parentheses() {
        let line = "4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.pgrp, 4242);
        assert_eq!(stat.start_time, 987654);
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("12 (x) S 1"), None);
    }

    #[test]
    fn callers_at_once_share_scans_and_each_sees_what_was_there_when_it_asked() {
        use std::os::unix::process::CommandExt;
        let entry = format!("{OWNER_VAR}=/test-{}#leader", std::process::id());
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env(OWNER_VAR, &entry[OWNER_VAR.len() + 1..])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // Once exec'd, the environment is the new one.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while leaders_with_env(&entry).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let before = SCANS.load(std::sync::atomic::Ordering::Relaxed);
        let found: Vec<Vec<(i32, u64)>> = std::thread::scope(|s| {
            let callers: Vec<_> = (0..16)
                .map(|_| s.spawn(|| leaders_with_env(&entry)))
                .collect();
            callers.into_iter().map(|c| c.join().unwrap()).collect()
        });
        let made = SCANS.load(std::sync::atomic::Ordering::Relaxed) - before;
        let start_time = match pid_status(pid) {
            PidStatus::Running { start_time } => start_time,
            PidStatus::Gone => panic!("the child should run"),
        };
        for f in &found {
            assert_eq!(f, &[(pid, start_time)]);
        }
        // At least one scan started after they asked (other tests may
        // scan meanwhile, so how many is not fixed).
        assert!(made >= 1, "{made} scans");
        // A caller after the process is gone does not get an older scan.
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(leaders_with_env(&entry), []);
        assert!(group_is_empty(pid));
    }

    #[test]
    fn a_group_with_a_live_leader_is_not_empty() {
        let me = std::process::id() as i32;
        let own_group = read_stat(me).unwrap().pgrp;
        assert!(!group_is_empty(own_group));
        assert!(group_is_empty(i32::MAX));
    }

    #[test]
    fn sees_itself() {
        let me = std::process::id() as i32;
        let PidStatus::Running { start_time } = pid_status(me) else {
            panic!("the test process should be running");
        };
        assert!(is_alive(me, Some(start_time)));
        assert!(is_alive(me, None));
        assert!(!is_alive(me, Some(start_time + 1)));
        assert!(!is_alive(i32::MAX, None));
    }
}
