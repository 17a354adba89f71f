//! The `podsec-k8s-rbac` package: cluster users, their client certificates and kubeconfigs, and
//! their role bindings, through the Kubernetes API.

use podsec_common::cli::Package;
use podsec_common::command;
use podsec_common::i18n::Catalogue;

pub mod api;
pub mod binding;
pub mod binding_args;
pub mod bindrole;
pub mod create_kubeconfig;
pub mod create_remoteplace;
pub mod create_user;
pub mod csr;
pub mod error;
pub mod get_userroles;
pub mod names;
pub mod unbindrole;
pub mod user_kubeconfig;

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
