use clap::Parser;

use countersign::cli::{self, Cli};

#[tokio::main]
async fn main() {
    // reqwest and slack-morphism both speak rustls; one process-wide provider serves both.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    countersign::telemetry::init(&cli.log_format);
    let code = match cli::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("countersign: {error:#}");
            1
        }
    };
    std::process::exit(code);
}
