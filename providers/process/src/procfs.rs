//! What `/proc` says about a process: whether it runs, and since when.
//!
//! A pid alone does not identify a process: the kernel reuses pids. cutover
//! therefore records the pid together with the process's start time (field 22
//! of `/proc/PID/stat`, in clock ticks since boot), and only treats a process
//! as the one it started when both match. A zombie has exited and counts as
//! gone: it is only waiting for its parent to collect its exit status.

use std::fs;

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

/// Live process-group leaders whose environment holds exactly `entry`
/// (`NAME=value`), with their start times. cutover marks each process it
/// starts with its owner, so a process started by an apply that was killed
/// before it could record the pid can still be found.
pub(crate) fn leaders_with_env(entry: &str) -> Vec<(i32, u64)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = read_stat(pid)?;
            if stat.pgrp != pid || stat.state == 'Z' || stat.state == 'X' {
                return None;
            }
            let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
            environ
                .split(|b| *b == 0)
                .any(|e| e == entry.as_bytes())
                .then_some((pid, stat.start_time))
        })
        .collect()
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
