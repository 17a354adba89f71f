//! The `podsec` package: image-trust policy, the local registry and signature server, image
//! makers and podman users, loading and signing images. One module per command.

use podsec_common::cli::Package;
use podsec_common::command;
use podsec_common::i18n::Catalogue;

mod create_imagemakeruser;
mod create_podmanusers;
mod create_policy;
mod create_services;
mod fetch;
mod get_platform;
mod gpg_colons;
mod layout;
mod load_sign_oci;
mod oci_archive;
mod registries_conf;
mod registry;
mod registry_migration;
mod save_oci;
mod signature_store;

// The parsers of untrusted input that the fuzz targets drive.
pub use gpg_colons::primary_fingerprints;
pub use oci_archive::unpack_tar;
pub use registries_conf::{REGISTRY, allow_insecure_registry_local};

/// The package's Russian messages (msgid = the English template as the code writes it).
pub static TRANSLATIONS: Catalogue = Catalogue::new("ru", include_str!("../po/ru.po"));

pub const PACKAGE: Package = Package {
    name: "podsec",
    version: env!("CARGO_PKG_VERSION"),
    commands: &[
        command!(create_policy),
        command!(create_services),
        command!(create_imagemakeruser),
        command!(create_podmanusers),
        command!(load_sign_oci),
        command!(save_oci),
        command!(get_platform),
    ],
};
