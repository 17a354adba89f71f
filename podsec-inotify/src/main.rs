//! The multicall binary of the `podsec-inotify` package: one installed link per command name.

fn main() -> std::process::ExitCode {
    podsec_common::i18n::install(&podsec_inotify::TRANSLATIONS);
    podsec_common::cli::multicall(&podsec_inotify::PACKAGE)
}
