//! The command line: clap definitions and one thin file per command.
//!
//! A command parses its flags, calls the config loader and the engine, and
//! hands the result to a view in [`crate::render`].

/// `print!` that never panics: a closed stdout (`cutover show | head -1`)
/// must not stop a command, least of all an apply.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = write!(stdout, $($arg)*).and_then(|()| stdout.flush());
    }};
}

/// `println!` that never panics (see `out!`).
macro_rules! outln {
    () => { out!("\n") };
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, $($arg)*).and_then(|()| stdout.flush());
    }};
}

/// `eprint!` that never panics on a closed stderr.
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// `eprintln!` that never panics on a closed stderr.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod apply;
mod approve;
mod commands;
mod context;
mod fmt;
mod habits;

/// Terraform-style argument rewriting (`-out=F` -> `--out=F`) on cutover's
/// own command line, for the fuzz target `habits` (fuzz/): not part of the
/// API. `Err` is the one-line hint of a refused argument.
#[doc(hidden)]
pub fn rewrite_args_for_fuzzing(
    args: Vec<std::ffi::OsString>,
) -> Result<Vec<std::ffi::OsString>, String> {
    habits::rewrite(&command(), args).map_err(|habits::Refused(hint)| hint)
}
mod migrate;
mod notify;
mod plan;
mod progress;
mod refresh;
mod rollback;
mod signals;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Exit status: success (and "no changes" with `--detailed-exitcode`).
pub const EXIT_OK: u8 = 0;
/// Exit status: an error.
pub const EXIT_ERROR: u8 = 1;
/// Exit status: changes present (with `--detailed-exitcode`).
pub const EXIT_CHANGES: u8 = 2;

/// cutover: a declarative reconciler for blue-green deployments.
#[derive(Debug, Parser)]
#[command(name = "cutover", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Use the configuration in DIR instead of the current directory.
    #[arg(
        short = 'C',
        long = "chdir",
        value_name = "DIR",
        global = true,
        default_value = "."
    )]
    pub dir: PathBuf,
    /// Never colour the output (also when NO_COLOR is set).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Set a variable: --var name=value (repeatable; wins over --var-file).
    #[arg(long = "var", value_name = "NAME=VALUE", global = true)]
    pub vars: Vec<String>,
    /// Read variables from an HCL (or .json) file (repeatable).
    #[arg(long = "var-file", value_name = "FILE", global = true)]
    pub var_files: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prepare a configuration directory: check it and create the state file.
    Init,
    /// Check the configuration without reading anything live.
    Validate,
    /// Rewrite the configuration files in canonical form (--check: only list them).
    Fmt(fmt::FmtArgs),
    /// Show what apply would change, reading the live routers and environments.
    Plan(plan::PlanArgs),
    /// Make the changes: idle colours first, health gates, then the cut-overs.
    Apply(apply::ApplyArgs),
    /// Switch routers back to their previous colour (health-gated).
    Rollback(rollback::RollbackArgs),
    /// Approve the cut-over of an apply that waits for approval (from
    /// another terminal or a CI job).
    Approve(approve::ApproveArgs),
    /// Show a saved plan, or the state.
    Show(commands::ShowArgs),
    /// Every router's live colour, each colour's release and health, and
    /// drift, read live now (nothing is changed).
    Status(commands::StatusArgs),
    /// Print the configuration's outputs.
    Output(commands::OutputArgs),
    /// Inspect the state, check it, or move it to or from a shared backend.
    #[command(subcommand)]
    State(commands::StateCommand),
    /// Print the dependency graph of the configuration in DOT.
    Graph,
    /// Remove a stale state lock left by a process that is gone.
    ForceUnlock(commands::ForceUnlockArgs),
    /// Print shell completions.
    Completions(commands::CompletionsArgs),
}

/// Run the command line and return the exit status.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let args = match habits::rewrite(&command(), args) {
        Ok(args) => args,
        Err(habits::Refused(hint)) => {
            errln!("error: {hint}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // `--help | head` must not panic either.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_ERROR } else { EXIT_OK });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let result = runtime.block_on(run(cli));
    // A confirmation prompt a signal answered leaves a thread blocked on
    // stdin: do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(code) => ExitCode::from(code),
        // Diagnostics were printed where they were found.
        Err(e) if e.is::<context::ReportedErrors>() => ExitCode::from(EXIT_ERROR),
        Err(e) => {
            errln!("error: {}", said_once(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let g = &cli.global;
    match cli.command {
        Command::Init => commands::init(g).await,
        Command::Validate => commands::validate(g).await,
        Command::Fmt(args) => fmt::run(g, args),
        Command::Plan(args) => plan::run(g, args).await,
        Command::Apply(args) => apply::run(g, args).await,
        Command::Rollback(args) => rollback::run(g, args).await,
        Command::Approve(args) => approve::run(g, args).await,
        Command::Show(args) => commands::show(g, args).await,
        Command::Status(args) => commands::status(g, args).await,
        Command::Output(args) => commands::output(g, args).await,
        Command::State(cmd) => commands::state(g, cmd).await,
        Command::Graph => commands::graph(g).await,
        Command::ForceUnlock(args) => commands::force_unlock(g, args).await,
        Command::Completions(args) => commands::completions(args),
    }
}

/// An error and its causes, each said once: a cause whose words the message
/// already holds (many errors quote their source) is not repeated.
fn said_once(e: &anyhow::Error) -> String {
    crate::engine::error::said_once(e.as_ref())
}

/// The clap command, for completions and docs.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
