//! The `podsec` package: image-trust policy, the local registry and signature server, image
//! makers and podman users, loading and signing images. One module per command.

use podsec_common::cli::Package;
use podsec_common::command;
use podsec_common::i18n::Catalogue;

pub mod as_user;
pub mod create_imagemakeruser;
pub mod create_podmanusers;
pub mod create_policy;
pub mod create_services;
pub mod fetch;
pub mod get_platform;
pub mod gpg_colons;
pub mod layout;
pub mod load_sign_oci;
pub mod oci_archive;
pub mod posix_acl;
pub mod registries_conf;
pub mod registry;
pub mod registry_migration;
pub mod save_oci;
pub mod signature_store;

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
