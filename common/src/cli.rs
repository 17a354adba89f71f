//! Multicall dispatch shared by the four package binaries (busybox/uutils style).
//!
//! Each package installs one binary and a symlink per command name. The binary picks the command
//! from the name it was called by (`argv[0]`), or from its first argument when called by its own
//! name (`podsec create-policy ...` or `podsec podsec-create-policy ...`).

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// One command of a package.
pub struct Command {
    /// The installed name, e.g. `podsec-create-policy`; also the syslog identifier.
    pub name: &'static str,
    /// Other installed names of the same command (e.g. `kubeadm` for `podsec-u7s-kubeadm`).
    pub aliases: &'static [&'static str],
    /// Entry point: receives the whole argument vector, `argv[0]` being `name`.
    pub main: fn(Vec<OsString>) -> ExitCode,
    /// The clap definition, for help listings, man pages and completions.
    pub definition: fn() -> clap::Command,
    /// Where `make install` links it.
    pub placement: Placement,
}

/// Where a command's link is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// `/usr/bin/<name>`, with a man page and a bash completion.
    Bin,
    /// Only `/usr/libexec/podsec/u7s/bin/<name>`: the helpers of the u7s runtime, some named
    /// like the tools they wrap (`systemctl`, `rootlessctl`), for the PATH of u7s-admin and of
    /// admins who put that directory first.
    U7sLibexec,
}

/// A package binary: its name and its commands.
pub struct Package {
    pub name: &'static str,
    pub version: &'static str,
    pub commands: &'static [Command],
}

impl Package {
    /// Finds a command by its installed name, an alias, or a short form without the package or
    /// `podsec-` prefix (`create-policy`, `check-policy`, `u7s-kubeadm`).
    pub fn find(&self, name: &str) -> Option<&Command> {
        let candidates = [
            name.to_string(),
            format!("{}-{name}", self.name),
            format!("podsec-{name}"),
        ];
        candidates.iter().find_map(|candidate| {
            self.commands
                .iter()
                .find(|c| c.name == candidate || c.aliases.contains(&candidate.as_str()))
        })
    }

    /// The command names, one per line in `--list` (what `make install` links into bin/;
    /// aliases such as `kubeadm` and the u7s helpers go elsewhere).
    fn command_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.commands
            .iter()
            .filter(|c| c.placement == Placement::Bin)
            .map(|c| c.name)
    }

    /// `--list-u7s`: the links of /usr/libexec/podsec/u7s/bin as `(link, target)`, the target
    /// being a name in bin/ (`kubeadm` → `podsec-u7s-kubeadm`, `nsenter_u7s` → the package).
    fn u7s_links(&self) -> Vec<(&'static str, &'static str)> {
        let mut links = Vec::new();
        for command in self.commands {
            match command.placement {
                Placement::Bin => links.extend(command.aliases.iter().map(|a| (*a, command.name))),
                Placement::U7sLibexec => links.push((command.name, self.name)),
            }
        }
        links
    }

    fn usage(&self) -> String {
        let mut text = crate::tr!(
            "{name} {version}: multicall binary of the {name} package\n\n\
             Usage: <command> [ARGS]...   (through the installed link)\n       \
             {name} <command> [ARGS]...\n       {name} --list | --list-u7s | --help | --version | --generate man|man-ru|bash|pot DIR\n\nCommands:\n",
            name = self.name,
            version = self.version
        );
        for command in self.commands {
            let about = (command.definition)()
                .get_about()
                .map(|a| a.to_string())
                .unwrap_or_default();
            let about = crate::i18n::lookup(&about).map_or(about, str::to_string);
            let about = about.split(':').next().unwrap_or_default();
            text.push_str(&format!("  {:<42} {about}\n", command.name));
        }
        text
    }
}

/// Runs the package binary: dispatch on `argv[0]`, else on the first argument.
pub fn multicall(package: &Package) -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let called_as = args
        .first()
        .map(|a| base_name(a))
        .unwrap_or_else(|| package.name.to_string());
    if let Some(command) = package
        .find(&called_as)
        .filter(|_| called_as != package.name)
    {
        args[0] = command.name.into();
        return (command.main)(args);
    }
    let first = args.get(1).map(|a| a.to_string_lossy().into_owned());
    match first.as_deref() {
        None | Some("-h" | "--help" | "help") => {
            print!("{}", package.usage());
            if first.is_none() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Some("-V" | "--version") => {
            println!("{} {}", package.name, package.version);
            ExitCode::SUCCESS
        }
        Some("--list") => {
            for name in package.command_names() {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
        Some("--list-u7s") => {
            for (link, target) in package.u7s_links() {
                println!("{link}\t{target}");
            }
            ExitCode::SUCCESS
        }
        Some("--generate") => match (args.get(2).and_then(|a| a.to_str()), args.get(3)) {
            (Some(kind @ ("man" | "man-ru" | "bash" | "pot")), Some(dir)) => {
                match generate(package, kind, Path::new(dir)) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!(
                            "{}: {}",
                            package.name,
                            crate::tr!(
                                "cannot write to {dir}: {error}",
                                dir = Path::new(dir).display(),
                                error = crate::i18n::Localize::localized(&e)
                            )
                        );
                        ExitCode::FAILURE
                    }
                }
            }
            _ => {
                eprintln!("usage: {} --generate man|man-ru|bash|pot DIR", package.name);
                ExitCode::from(2)
            }
        },
        Some(name) => match package.find(name) {
            Some(command) => {
                let mut rest: Vec<OsString> = args.split_off(2);
                rest.insert(0, command.name.into());
                (command.main)(rest)
            }
            None => {
                eprintln!(
                    "{}: {}",
                    package.name,
                    crate::tr!(
                        "unknown command '{name}' (see '{package} --help')",
                        name = name,
                        package = package.name
                    )
                );
                ExitCode::from(2)
            }
        },
    }
}

/// Renders a man page (`<name>.1`) or a bash completion file (`<name>`) for every command into
/// `dir`, from the same clap definitions the commands parse with.
fn generate(package: &Package, kind: &str, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if kind == "man-ru" {
        crate::i18n::force_language("ru");
    }
    if kind == "pot" {
        // For translators: the help texts of every command (the u7s helpers too: their
        // --help follows the locale) not yet translated into the current language (all of
        // them under LANG=C), as a gettext template.
        let mut texts: Vec<String> = Vec::new();
        for command in package.commands {
            let (_, missing) = crate::i18n::translate_command((command.definition)());
            for text in missing {
                if !texts.contains(&text) {
                    texts.push(text);
                }
            }
        }
        let pot: String = texts
            .iter()
            .map(|t| format!("msgid {}\nmsgstr \"\"\n\n", crate::i18n::po_string(t)))
            .collect();
        // Outside the host seam (here and below): build-time output of --generate into the packager's directory.
        return std::fs::write(dir.join(format!("{}.pot", package.name)), pot);
    }
    // The u7s helpers share names with system tools (systemctl): no pages or completions.
    for command in package
        .commands
        .iter()
        .filter(|c| c.placement == Placement::Bin)
    {
        let definition = (command.definition)();
        if kind == "man-ru" {
            // A Russian page only where every text of the command is translated; `man -L ru`
            // shows the English page of the others.
            let (definition, missing) = crate::i18n::translate_command(definition);
            if !missing.is_empty() {
                eprintln!(
                    "{}: no Russian man page for {}: {} texts not translated yet",
                    package.name,
                    command.name,
                    missing.len()
                );
                continue;
            }
            let mut page = Vec::new();
            clap_mangen::Man::new(definition).render(&mut page)?;
            let page = crate::i18n::translate_man_page(&String::from_utf8_lossy(&page));
            std::fs::write(dir.join(format!("{}.1", command.name)), page)?;
        } else if kind == "man" {
            let mut page = Vec::new();
            clap_mangen::Man::new(definition).render(&mut page)?;
            std::fs::write(dir.join(format!("{}.1", command.name)), page)?;
        } else {
            let mut definition = definition;
            let mut script = Vec::new();
            clap_complete::generate(
                clap_complete::Shell::Bash,
                &mut definition,
                command.name,
                &mut script,
            );
            std::fs::write(dir.join(command.name), script)?;
        }
    }
    Ok(())
}

fn base_name(arg: &OsStr) -> String {
    Path::new(arg)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A command's failure: a one-line message (via `Display`) and the exit code it maps to.
pub trait Failure: crate::i18n::LocalizedError {
    fn exit_code(&self) -> u8 {
        1
    }
}

/// For commands that cannot fail (yet).
impl Failure for std::convert::Infallible {}

/// The entry point of one command: parse `argv` with clap, run, and turn an error into
/// `<name>: <message>` on stderr and the error's exit code.
pub fn run_command<A, E>(
    name: &str,
    argv: Vec<OsString>,
    run: impl FnOnce(A) -> Result<ExitCode, E>,
) -> ExitCode
where
    A: clap::Parser,
    E: Failure,
{
    let args = match parse::<A>(argv) {
        Ok(args) => args,
        Err(err) => return usage_error(name, &err),
    };
    match run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{name}: {}", crate::i18n::localized_chain(&err));
            ExitCode::from(err.exit_code())
        }
    }
}

/// Parses `argv` (`argv[0]` the command name) with the command's clap definition in the
/// user's language ([`crate::i18n::localize_command`]): `--help` and `-h` are rendered in it.
pub fn parse<A: clap::Parser>(argv: Vec<OsString>) -> Result<A, clap::Error> {
    let mut command = crate::i18n::localize_command(A::command());
    let mut matches = command.try_get_matches_from_mut(argv)?;
    A::from_arg_matches_mut(&mut matches).map_err(|err| err.format(&mut command))
}

/// Help and version go out as clap renders them; a usage error is one line on stderr,
/// `<name>: <what is wrong> (see --help)`, like every other error of the commands.
fn usage_error(name: &str, err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return ExitCode::from(err.exit_code().clamp(0, 255) as u8);
    }
    let message = match crate::i18n::language() {
        Some(_) => translated_usage_error(err).unwrap_or_else(|| one_line_usage_error(err)),
        None => one_line_usage_error(err),
    };
    let _ = writeln!(std::io::stderr(), "{name}: {message}");
    ExitCode::from(err.exit_code().clamp(0, 255) as u8)
}

/// clap's message without its `error: ` tag, usage block and tips, joined on one line.
pub fn one_line_usage_error(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let mut parts: Vec<&str> = Vec::new();
    for line in rendered.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if line.is_empty() || line.starts_with("tip:") {
            continue;
        }
        parts.push(line.strip_prefix("error: ").unwrap_or(line));
    }
    format!("{} (see --help)", parts.join(" "))
}

/// A usage error in the user's language, built from clap's error context (clap renders
/// English only); `None` for the kinds without a translation.
fn translated_usage_error(err: &clap::Error) -> Option<String> {
    use crate::tr;
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let string = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => Some(v.join(", ")),
        _ => None,
    };
    let arg = string(ContextKind::InvalidArg);
    let value = string(ContextKind::InvalidValue);
    let text = match err.kind() {
        ErrorKind::MissingRequiredArgument => tr!(
            "the following required arguments were not provided: {arguments}",
            arguments = arg?
        ),
        ErrorKind::UnknownArgument => {
            tr!("unexpected argument '{argument}' found", argument = arg?)
        }
        ErrorKind::InvalidSubcommand => tr!(
            "unrecognized subcommand '{subcommand}'",
            subcommand = string(ContextKind::InvalidSubcommand)?
        ),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let (arg, value) = (arg?, value?);
            let mut text = if value.is_empty() {
                tr!(
                    "a value is required for '{argument}' but none was supplied",
                    argument = arg
                )
            } else {
                tr!(
                    "invalid value '{value}' for '{argument}'",
                    value = value,
                    argument = arg
                )
            };
            if let Some(source) = std::error::Error::source(err) {
                text.push_str(": ");
                text.push_str(&crate::i18n::localized_foreign(source));
            }
            if let Some(valid) = string(ContextKind::ValidValue) {
                text.push(' ');
                text.push_str(&tr!("[possible values: {values}]", values = valid));
            }
            text
        }
        ErrorKind::TooManyValues => tr!(
            "unexpected value '{value}' for '{argument}' found; no more were expected",
            value = value?,
            argument = arg?
        ),
        ErrorKind::ArgumentConflict => {
            let arg = arg?;
            match string(ContextKind::PriorArg) {
                Some(prior) if prior != arg => tr!(
                    "the argument '{argument}' cannot be used with '{other}'",
                    argument = arg,
                    other = prior
                ),
                _ => tr!(
                    "the argument '{argument}' cannot be used multiple times",
                    argument = arg
                ),
            }
        }
        ErrorKind::MissingSubcommand => tr!(
            "'{command}' requires a subcommand but one was not provided",
            command = string(ContextKind::InvalidSubcommand)?
        ),
        _ => return None,
    };
    Some(format!("{text} {}", tr!("(see --help)")))
}

/// `error: cause: cause`, on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let both = |text: String| (text.clone(), text);
    let causes = std::iter::successors(err.source(), |cause| cause.source());
    join_chain(
        both(err.to_string()),
        causes.map(|cause| both(cause.to_string())),
    )
}

/// The rule of a chain, for [`error_chain`] and its translation
/// ([`crate::i18n::localized_chain`]): parts are `(English, as shown)`; a cause is added where
/// the English so far does not already end with it; one line.
pub(crate) fn join_chain(
    (mut english, mut shown): (String, String),
    causes: impl Iterator<Item = (String, String)>,
) -> String {
    for (cause_english, cause_shown) in causes {
        if !english.ends_with(&cause_english) {
            english.push_str(": ");
            english.push_str(&cause_english);
            shown.push_str(": ");
            shown.push_str(&cause_shown);
        }
    }
    shown.replace('\n', " ")
}

/// Refusal of a root-only command run by another user.
#[derive(Debug, thiserror::Error, crate::i18n::Localize)]
#[error("must be run as root (effective uid 0); the current effective uid is {uid}")]
pub struct NotRoot {
    pub uid: u32,
}

impl Failure for NotRoot {}

/// Root-only commands (upstream protected them by mode 0700; ours are 0755 links to one binary)
/// check for themselves.
pub fn require_root() -> Result<(), NotRoot> {
    let uid = nix::unistd::geteuid().as_raw();
    if uid == 0 {
        Ok(())
    } else {
        Err(NotRoot { uid })
    }
}

/// `command!(module)` or `command!(module, aliases = ["kubeadm"])`: the [`Command`] entry of a
/// command module that has `NAME`, `Args` (clap) and `main`.
#[macro_export]
macro_rules! command {
    ($module:ident) => {
        $crate::command!($module, aliases = [])
    };
    ($module:ident, aliases = [$($alias:expr),*]) => {
        $crate::cli::Command {
            name: $module::NAME,
            aliases: &[$($alias),*],
            main: $module::main,
            definition: <$module::Args as $crate::clap::CommandFactory>::command,
            placement: $crate::cli::Placement::Bin,
        }
    };
    ($module:ident, u7s_libexec) => {
        $crate::cli::Command {
            name: $module::NAME,
            aliases: &[],
            main: $module::main,
            definition: <$module::Args as $crate::clap::CommandFactory>::command,
            placement: $crate::cli::Placement::U7sLibexec,
        }
    };
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser, Debug)]
    #[command(name = "podsec-demo")]
    struct Demo {
        user: String,
        #[arg(long)]
        flag: bool,
    }

    #[test]
    fn usage_errors_are_one_line_and_name_the_problem() {
        let missing = Demo::try_parse_from(["podsec-demo"]).unwrap_err();
        let text = super::one_line_usage_error(&missing);
        assert!(!text.contains('\n'), "{text}");
        assert!(
            text.contains("<USER>") && text.ends_with("(see --help)"),
            "{text}"
        );
        let unknown = Demo::try_parse_from(["podsec-demo", "u", "--bogus"]).unwrap_err();
        let text = super::one_line_usage_error(&unknown);
        assert!(text.contains("--bogus") && !text.contains('\n'), "{text}");
        assert!(!text.starts_with("error:"), "{text}");
    }
}
