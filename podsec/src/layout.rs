//! Where podsec keeps the trust chain, and the fixed contents it writes there.

use std::path::Path;

use podsec_common::host::versioned::Versioned;
use podsec_common::registries_d::{RegistriesD, Section};
pub use podsec_common::trust_chain::{
    GROUP_PODMAN, GROUP_PODMAN_DEV, KEYS_DIR, LOCAL_REGISTRY, SIGNATURES_DIR, SIGSTORE_HOST,
    SIGSTORE_PORT, SIGSTORE_ROOT, SIGSTORE_URL,
};

pub const CONTAINERS_DIR: &str = "/etc/containers";
pub const REGISTRIES_D_DIR: &str = "/etc/containers/registries.d";
/// Where image makers write signatures (their lookaside-staging).
pub const STAGING_URL: &str = "file:///var/sigstore/sigstore/";

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
