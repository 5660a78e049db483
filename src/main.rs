fn main() -> std::process::ExitCode {
    btcbot::cli::run()
}
