//! The `cutover` binary: everything lives in the library's `cli` module.

/// glibc's allocator spends a share of a large run that grows faster than
/// the run itself in `malloc_consolidate`; mimalloc does not (docs/scale.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cutover::cli::main_with_args(std::env::args_os())
}
