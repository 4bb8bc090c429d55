//! The `cutover` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    cutover::cli::main_with_args(std::env::args_os())
}
