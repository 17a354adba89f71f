//! Where podsec keeps the trust chain, and the fixed contents it writes there.

use std::path::Path;

use podsec_common::host::versioned::Versioned;
use podsec_common::registries_d::{RegistriesD, Section};

pub const SIGSTORE_ROOT: &str = "/var/sigstore";
/// Public keys of the image makers and the published policy.json: root-owned, read-only for others.
pub const KEYS_DIR: &str = "/var/sigstore/keys";
/// The signature store (lookaside) served as http://sigstore.local:81/sigstore/.
pub const SIGNATURES_DIR: &str = "/var/sigstore/sigstore";
pub const CONTAINERS_DIR: &str = "/etc/containers";
pub const REGISTRIES_D_DIR: &str = "/etc/containers/registries.d";
/// Where clients read signatures.
pub const SIGSTORE_URL: &str = "http://sigstore.local:81/sigstore/";
/// Where image makers write them (their lookaside-staging).
pub const STAGING_URL: &str = "file:///var/sigstore/sigstore/";
pub const GROUP_PODMAN: &str = "podman";
pub const GROUP_PODMAN_DEV: &str = "podman_dev";
pub const SIGSTORE_PORT: u16 = 81;

pub fn policy_file() -> Versioned<'static> {
    Versioned {
        dir: Path::new(CONTAINERS_DIR),
        live_name: "policy.json",
        prefix: "policy_",
    }
}

pub fn registries_d_file() -> Versioned<'static> {
    Versioned {
        dir: Path::new(REGISTRIES_D_DIR),
        live_name: "default.yaml",
        prefix: "default_",
    }
}

pub fn registries_conf_file() -> Versioned<'static> {
    Versioned {
        dir: Path::new(CONTAINERS_DIR),
        live_name: "registries.conf",
        prefix: "registries_",
    }
}

/// The system registries.d: read signatures from the signature server.
pub fn system_registries_d() -> RegistriesD {
    RegistriesD {
        default_docker: Some(Section {
            lookaside: Some(SIGSTORE_URL.into()),
            sigstore: Some(SIGSTORE_URL.into()),
            ..Section::default()
        }),
        ..RegistriesD::default()
    }
}

/// An image maker's registries.d: read as everybody, write into the local store.
pub fn maker_registries_d() -> RegistriesD {
    let mut config = system_registries_d();
    if let Some(section) = config.default_docker.as_mut() {
        section.lookaside_staging = Some(STAGING_URL.into());
        section.sigstore_staging = Some(STAGING_URL.into());
    }
    config
}

/// `/var/sigstore/keys/<user>.pgp`, the key path a maker's signedBy rule names.
pub fn key_path(user: &str) -> String {
    format!("{KEYS_DIR}/{user}.pgp")
}
