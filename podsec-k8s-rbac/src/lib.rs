//! The `podsec-k8s-rbac` package: cluster users, their client certificates and kubeconfigs, and
//! their role bindings, through the Kubernetes API.

use podsec_common::cli::Package;
use podsec_common::command;
use podsec_common::i18n::Catalogue;

mod api;
mod binding;
mod binding_args;
mod bindrole;
mod create_kubeconfig;
mod create_remoteplace;
mod create_user;
mod csr;
mod error;
mod get_userroles;
mod names;
mod unbindrole;
mod user_kubeconfig;

// The kubeconfig reader, for its fuzz target.
pub use user_kubeconfig::client_certificate;

/// The package's Russian messages (msgid = the English template as the code writes it).
pub static TRANSLATIONS: Catalogue = Catalogue::new("ru", include_str!("../po/ru.po"));

pub const PACKAGE: Package = Package {
    name: "podsec-k8s-rbac",
    version: env!("CARGO_PKG_VERSION"),
    commands: &[
        command!(create_user),
        command!(create_kubeconfig),
        command!(create_remoteplace),
        command!(bindrole),
        command!(unbindrole),
        command!(get_userroles),
    ],
};

/// Where the commands find the cluster, for `--help`.
pub const KUBECONFIG_HELP: &str = "Environment:\n  KUBECONFIG    administrator's kubeconfig (default ~/.kube/config, then /etc/kubernetes/admin.conf)";
