//! The `podsec-k8s` package: rootless Kubernetes (kubeadm wrapper and the u7s runtime of
//! u7s-admin) and the archiving of the Kubernetes images.

use podsec_common::cli::Package;
use podsec_common::command;

pub mod k8s_save_oci;
pub mod node_config;
pub mod u7s;
pub mod u7s_kubeadm;
pub mod upstream_env;

pub const PACKAGE: Package = Package {
    name: "podsec-k8s",
    version: env!("CARGO_PKG_VERSION"),
    commands: &[
        command!(u7s_kubeadm, aliases = ["kubeadm"]),
        command!(k8s_save_oci),
    ],
};
