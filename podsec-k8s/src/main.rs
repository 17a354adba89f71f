//! The multicall binary of the `podsec-k8s` package: one installed link per command name.

fn main() -> std::process::ExitCode {
    podsec_common::i18n::install(&podsec_k8s::TRANSLATIONS);
    // The package's own upgrade step (run by its %post), not a command of its own.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "--import-upstream-env") {
        let mut argv = vec![std::ffi::OsString::from(podsec_k8s::upstream_env::NAME)];
        argv.extend(args.into_iter().skip(2));
        return podsec_k8s::upstream_env::main(argv);
    }
    podsec_common::cli::multicall(&podsec_k8s::PACKAGE)
}
