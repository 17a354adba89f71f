//! The multicall binary of the `podsec` package: one installed link per command name.

fn main() -> std::process::ExitCode {
    podsec_common::i18n::install(&podsec::TRANSLATIONS);
    podsec_common::cli::multicall(&podsec::PACKAGE)
}
