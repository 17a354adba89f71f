//! The `podsec-inotify` package: monitoring. Nagios plugins for policies and images, watchers of
//! container file systems and of the Kubernetes audit log, vulnerability scans with trivy.

use podsec_common::cli::Package;
use podsec_common::command;
use podsec_common::i18n::Catalogue;

mod build_invulnerable_image;
mod check_containers;
mod check_images;
mod check_kubeapi;
mod check_policy;
mod check_vuln;
mod image_store;
mod inventory;
mod mail;
mod nagios;
mod plugin;
mod plugin_args;
mod storage;
mod trivy;

// The audit-line prefilter, for the fuzz target that checks it against the full parse.
pub use check_kubeapi::{CODE_KEY, may_have_failed};

/// The package's Russian messages (msgid = the English template as the code writes it).
pub static TRANSLATIONS: Catalogue = Catalogue::new("ru", include_str!("../po/ru.po"));

pub const PACKAGE: Package = Package {
    name: "podsec-inotify",
    version: env!("CARGO_PKG_VERSION"),
    commands: &[
        command!(check_policy),
        command!(check_images),
        command!(check_containers),
        command!(check_kubeapi),
        command!(check_vuln),
        command!(build_invulnerable_image),
    ],
};
