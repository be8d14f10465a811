//! The sync engine against real repositories and real git servers (`file://`, smart HTTP,
//! the git CLI as another user).

mod branches;
mod common;
mod credentials;
mod faults;
mod local;
mod remote;
mod rewrites;
mod transports;
