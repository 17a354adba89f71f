//! `podsec-common`: what the four podsec packages share.
//!
//! - formats: [`policy`] (containers-policy.json(5)), [`registries_d`] (containers-registries.d(5)),
//!   [`image_ref`] (docker references and policy scopes), [`lookaside`] (signature storage paths),
//!   [`signature`] (the simple-signing payload);
//! - registries: [`registry_access`] (TLS, insecure registries, credentials, bearer tokens);
//! - the machine: [`host`] (users, groups, atomic and no-follow file writes), [`profile`]
//!   (distribution-specific paths and commands, in one place);
//! - the edges: [`log`] (journald/syslog with the nagwad `<Level>: <text>` contract) and [`cli`]
//!   (multicall dispatch, exit codes, root checks), [`i18n`] (messages in the user's language).

pub use clap;
// The derive and msg! of podsec-i18n-macros name this crate `::podsec_common`, here too.
extern crate self as podsec_common;
pub use podsec_i18n_macros::msg;

pub mod audit;
pub mod cli;
pub mod host;
pub mod i18n;
pub mod image_ref;
pub mod log;
pub mod lookaside;
#[cfg(feature = "oci-save")]
pub mod oci_save;
#[cfg(feature = "openpgp")]
pub mod openpgp;
pub mod policy;
pub mod profile;
pub mod registries_d;
#[cfg(feature = "registry")]
pub mod registry_access;
pub mod signature;
mod timestamp;
pub mod trust_chain;
pub mod yaml;
