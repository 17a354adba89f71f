//! The `podsec-inotify` package: monitoring. Nagios plugins for policies and images, watchers of
//! container file systems and of the Kubernetes audit log, vulnerability scans with trivy.

use podsec_common::cli::Package;
use podsec_common::command;
use podsec_common::i18n::Catalogue;

pub mod build_invulnerable_image;
pub mod check_containers;
pub mod check_images;
pub mod check_kubeapi;
pub mod check_policy;
pub mod check_vuln;
pub mod image_store;
pub mod inventory;
pub mod mail;
pub mod plugin;
pub mod plugin_args;
pub mod storage;
pub mod trivy;

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
