//! The `podsec-k8s` package: rootless Kubernetes (kubeadm wrapper and the u7s runtime of
//! u7s-admin) and the archiving of the Kubernetes images.

use podsec_common::cli::Package;
use podsec_common::command;
use podsec_common::i18n::Catalogue;
use u7s::{kubelet, nsenter_u7s, rootlessctl, rootlesskit, start_stop, systemctl};

mod k8s_save_oci;
mod k8s_upgrade;
pub mod node_config;
mod u7s;
pub mod u7s_kubeadm;
pub mod upstream_env;

/// `path: error`: the error's English in `Display`, in the user's language when localized (an
/// OS error by its number), for an error detail that names the file it is about.
pub(crate) fn path_message(
    path: &std::path::Path,
    error: &(impl std::fmt::Display + podsec_common::i18n::Localize),
) -> podsec_common::i18n::Message {
    podsec_common::msg!("{path}: {error}", path = path.display())
}

/// The package's Russian messages (msgid = the English template as the code writes it).
pub static TRANSLATIONS: Catalogue = Catalogue::new("ru", include_str!("../po/ru.po"));

pub const PACKAGE: Package = Package {
    name: "podsec-k8s",
    version: env!("CARGO_PKG_VERSION"),
    commands: &[
        command!(u7s_kubeadm, aliases = ["kubeadm"]),
        command!(k8s_save_oci),
        command!(k8s_upgrade),
        command!(nsenter_u7s, u7s_libexec),
        command!(rootlessctl, u7s_libexec),
        command!(systemctl, u7s_libexec),
        command!(rootlesskit, u7s_libexec),
        command!(kubelet, u7s_libexec),
        command!(start_stop, u7s_libexec),
    ],
};
