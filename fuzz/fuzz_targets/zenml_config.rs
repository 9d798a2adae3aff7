//! ZenML's `config.yaml` and `credentials.yaml` as runql reads them (`src/store/locate.rs`,
//! with the MySQL and server addresses it makes): any text gives a store or a one-line error,
//! and no password, API key or token read shows in what runql prints of the result. See
//! `runql_fuzz::store::config_check`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use runql_fuzz::store::config_check;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if which % 2 == 0 {
        config_check::check_config(&text);
    } else {
        // The server to look up: one the seeds name, or one from the text's first line.
        let first = text.lines().next().unwrap_or("").trim_end_matches(':');
        let server = if which % 4 == 1 {
            "https://zenml.example.com"
        } else {
            first
        };
        config_check::check_credentials(&text, server);
    }
});
