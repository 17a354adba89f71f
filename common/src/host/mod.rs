//! The one seam to the machine. Commands read and change the host only through here, so that
//! symlink safety, atomic replacement, modes and exact group membership live in one place.

pub mod as_user;
pub mod beneath;
pub mod failpoint;
pub mod fake;
pub mod files;
pub mod hosts;
pub mod net;
pub mod posix_acl;
pub mod process;
pub mod programs;
pub mod seam;
pub mod services;
pub mod users;
pub mod versioned;

pub use seam::{Host, HostDir, RealHost};
