//! The u7s runtime: what runs as u7s-admin to host a rootless Kubernetes node.
//!
//! - [`ports`]: the ports published from the namespace per node role.

pub mod ports;
