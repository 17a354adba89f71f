//! The one seam to the machine. Commands read and change the host only through here, so that
//! symlink safety, atomic replacement, modes and exact group membership live in one place.

pub mod beneath;
pub mod failpoint;
pub mod files;
pub mod hosts;
pub mod net;
pub mod process;
pub mod programs;
pub mod services;
pub mod users;
pub mod versioned;
