//! The seatlock binary: parse the command line, load settings, then either serve (telemetry,
//! `Application::build`, `run_until(SIGTERM/SIGINT)`) or run a key command.

use seatlock::cli::{self, Command};
use seatlock::config::Settings;
use seatlock::startup::{Application, check_keys, raise_open_files_limit, shutdown_signal};
use seatlock::telemetry;

/// mimalloc instead of glibc malloc: a profile of the hold path showed ~15% of the service's CPU
/// in glibc's malloc/free (small, short-lived allocations across two worker threads).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("seatlock: {e}\n{}", cli::USAGE);
            std::process::exit(2);
        }
    };
    if command == Command::Help {
        println!("{}", cli::USAGE);
        return Ok(());
    }
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("seatlock: {e}");
            std::process::exit(2);
        }
    };
    // A key file that cannot be read or parsed is a bad setting too, found before anything starts.
    if let Err(e) = check_keys(&settings) {
        eprintln!("seatlock: {e:#}");
        std::process::exit(2);
    }
    if command != Command::Serve {
        std::process::exit(cli::run_keys(command, settings).await);
    }
    let traces = telemetry::init_tracing(&settings.log, &settings.telemetry.otlp);
    raise_open_files_limit();
    let served = async {
        Application::build(settings)
            .await?
            .run_until(shutdown_signal())
            .await
    };
    let served = served.await;
    if let Err(e) = &served {
        tracing::error!(error = format!("{e:#}"), "seatlock failed");
    }
    // Blocking (the export thread is joined): off the runtime's worker threads.
    let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
    served
}
