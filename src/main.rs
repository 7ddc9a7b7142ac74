use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    profile_bridge::cli::run(profile_bridge::cli::Cli::parse()).await
}
