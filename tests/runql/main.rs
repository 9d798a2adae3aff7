//! runql's integration tests, all against real ZenML stores made by real ZenML
//! (`tests/fixtures/make_store.sh`), compared with golden answers from ZenML's own Client.

mod common;
mod mariadb;
mod zenml_server;

mod cli;
mod differential;
mod export;
mod golden;
mod mirror;
mod mysql;
mod outputs;
mod pushdown;
mod queries;
mod readme;
mod repl;
mod secrets;
mod serve;
mod server;
mod store;
