//! The `cutover` binary: everything lives in the library's `cli` module.

/// glibc's allocator spends a share of a large run that grows faster than
/// the run itself in `malloc_consolidate`; mimalloc does not (docs/scale.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    return_freed_memory_at_once();
    cutover::cli::main_with_args(std::env::args_os())
}

/// mimalloc gives freed pages back to the system only after `purge_delay`
/// (one second in its v3). A run of cutover lasts a fraction of a
/// second and frees in bursts (one wave of steps after another), so the
/// delay kept a third of its peak RSS: at 1,000 environments the cut-over
/// apply peaked at 57 MiB, 38 MiB without the delay, in the same time
/// (docs/scale.md). `MIMALLOC_PURGE_DELAY` still has the last word.
fn return_freed_memory_at_once() {
    /// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (v3; the Rust
    /// bindings name only some options).
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: called before any other thread exists (mimalloc's options
        // are not synchronised); the option index is checked by the test.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
    }
}

#[cfg(test)]
mod tests {
    /// Index 15 is `purge_delay`: its default is 1,000 (ms), which no
    /// neighbouring option has.
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // SAFETY: a read of an option; nothing sets it in the test binary.
        let value = unsafe { libmimalloc_sys::mi_option_get(15) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(value, 1000);
        }
    }
}
