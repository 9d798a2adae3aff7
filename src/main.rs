//! The `runql` binary: everything lives in the library; see `runql::cli`.

fn main() -> std::process::ExitCode {
    runql::cli::main()
}
