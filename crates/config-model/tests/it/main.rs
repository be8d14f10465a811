//! The public API of `config-model`, rule by rule (BEHAVIOUR.md §1).
//!
//! Most cases run twice: once from the YAML file and once from the equivalent `FLIPT_*`
//! environment variables over an empty file; both must give the same configuration or the
//! same errors.

mod harness;
mod properties;
mod rules;
mod secrets;
