//! The multicall binary of the `podsec-k8s-rbac` package: one installed link per command name.

fn main() -> std::process::ExitCode {
    podsec_common::i18n::install(&podsec_k8s_rbac::TRANSLATIONS);
    podsec_common::cli::multicall(&podsec_k8s_rbac::PACKAGE)
}
