//! Unit tests with hand-built bytes following the libipvs/kernel layouts.
//! Golden tests against captures of the real tools live in `tests/golden.rs`.

mod dest;
mod info_config;
mod robustness;
mod service;
mod support;
