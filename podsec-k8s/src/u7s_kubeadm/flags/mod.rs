//! The kubeadm command line, parsed the way kubeadm (pflag) reads it, with the disposition of
//! every flag in one table: honoured by podsec (it goes into the generated configuration or the
//! plan), passed to the native kubeadm, or rejected with an error naming the flag and why.
//! Nothing is silently dropped (upstream ignored `--service-cidr`, `--config`, `--node-name`...,
//! lost values with spaces, kept getopt's quotes and read FLAG_* from the environment, §10.2/9-11).
//!
//! Subcommands other than `init` and `join` (and `init phase ...`, `join phase ...`) are not
//! parsed at all: their arguments go to the native kubeadm inside the u7s namespace exactly as
//! given, so kubeadm itself validates them.
//!
//! `table` holds the flags and their dispositions, `parser` reads the command line against it,
//! `typed` builds the init and join flags from what it read, `values` checks the syntax of
//! values, `usage` prints the table, `error` names what is refused.

mod error;
mod parser;
mod table;
#[cfg(test)]
mod tests;
mod typed;
mod usage;
mod values;

pub use error::{FlagError, Msgid};
pub use parser::{Invocation, Occurrence, parse};
pub use table::{Disposition, FLAGS, FlagSpec, Kind, Scope, spec};
pub use typed::{CommonFlags, InitFlags, JoinFlags};
pub use usage::subcommand_usage;
pub use values::is_dns_subdomain;

/// The CRI socket of a rootless node, inside the u7s namespace.
pub const CRI_SOCKET: &str = "unix:///run/crio/crio.sock";
/// Where kubeadm keeps the cluster certificates on a rootless node.
pub const CERT_DIR: &str = "/etc/kubernetes/pki";
