//! The command line read the way kubeadm's pflag reads it: the subcommand, and each flag
//! looked up in the table, refused when its disposition says so.

use super::error::{FlagError, Msgid};
use super::table::{Disposition, FLAGS, FlagSpec, Kind, Scope, spec};
use super::typed::{InitFlags, JoinFlags, common_flags, init_flags, join_flags};

/// One occurrence of a flag on the command line, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub spec: &'static FlagSpec,
    /// `None` for a bool given without `=value`.
    pub value: Option<String>,
}

/// What the wrapper was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// No subcommand (or only `-h`): the wrapper's usage. Never the deployment path.
    Usage {
        help: bool,
    },
    /// `init` or `join` with `-h`: the wrapper's usage of that subcommand.
    SubcommandHelp {
        command: &'static str,
    },
    Init(Box<InitFlags>),
    Join(Box<JoinFlags>),
    /// Any other subcommand: its arguments, exactly as given, for the native kubeadm.
    Native {
        args: Vec<String>,
    },
}

/// Where the subcommand is: skips the global flags (with their values) in front of it.
fn split_global(args: &[String]) -> Result<(Vec<Occurrence>, Option<usize>), FlagError> {
    let mut globals = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            return Ok((globals, (i + 1 < args.len()).then_some(i + 1)));
        }
        if !arg.starts_with('-') || arg == "-" {
            return Ok((globals, Some(i)));
        }
        let (occurrence, used) = read_flag(args, i, "", |spec| spec.scope == Scope::Global)?;
        globals.push(occurrence);
        i += used;
    }
    Ok((globals, None))
}

/// Reads the flag at `args[i]`; returns it and how many arguments it used (1 or 2).
fn read_flag(
    args: &[String],
    i: usize,
    command: &'static str,
    allowed: impl Fn(&FlagSpec) -> bool,
) -> Result<(Occurrence, usize), FlagError> {
    let arg = &args[i];
    let unknown = || FlagError::Unknown {
        command: if command.is_empty() {
            "(global)"
        } else {
            command
        },
        flag: arg.split('=').next().unwrap_or(arg).to_string(),
    };
    let (spec, inline): (&'static FlagSpec, Option<String>) =
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            (spec(name).ok_or_else(unknown)?, inline)
        } else {
            // -h, -v 5, -v5, -v=5
            let body = &arg[1..];
            let mut chars = body.chars();
            let letter = chars.next().ok_or_else(unknown)?;
            let rest: String = chars.collect();
            let spec = FLAGS
                .iter()
                .find(|f| f.short == Some(letter))
                .ok_or_else(unknown)?;
            let inline = if rest.is_empty() {
                None
            } else {
                Some(rest.strip_prefix('=').unwrap_or(&rest).to_string())
            };
            (spec, inline)
        };
    if !allowed(spec) {
        return Err(match (spec.scope, command) {
            (Scope::Init, c) if !c.is_empty() => FlagError::WrongCommand {
                command: c,
                flag: spec.name,
                belongs: "init",
            },
            (Scope::Join, c) if !c.is_empty() => FlagError::WrongCommand {
                command: c,
                flag: spec.name,
                belongs: "join",
            },
            _ => unknown(),
        });
    }
    match spec.kind {
        Kind::Bool => Ok((
            Occurrence {
                spec,
                value: inline,
            },
            1,
        )),
        Kind::Value | Kind::List => match inline {
            Some(v) => Ok((
                Occurrence {
                    spec,
                    value: Some(v),
                },
                1,
            )),
            None => {
                let value = args
                    .get(i + 1)
                    .ok_or(FlagError::MissingValue { flag: spec.name })?;
                Ok((
                    Occurrence {
                        spec,
                        value: Some(value.clone()),
                    },
                    2,
                ))
            }
        },
    }
}

/// Parses the wrapper's command line (without the program name).
pub fn parse(args: &[String]) -> Result<Invocation, FlagError> {
    let (globals, position) = split_global(args)?;
    let Some(position) = position else {
        let help = globals.iter().any(|o| o.spec.name == "help");
        // Global flags alone still get checked, so a rejected one is reported.
        for occurrence in &globals {
            check_disposition(occurrence)?;
        }
        return Ok(Invocation::Usage { help });
    };
    let command = args[position].as_str();
    let rest = &args[position + 1..];
    let command: &'static str = match command {
        "init" => "init",
        "join" => "join",
        _ => {
            return Ok(Invocation::Native {
                args: args.to_vec(),
            });
        }
    };
    // `init phase ...` / `join phase ...` are kubeadm's own step-by-step commands: native.
    if first_positional(rest) == Some("phase") {
        return Ok(Invocation::Native {
            args: args.to_vec(),
        });
    }
    let mut occurrences = globals;
    let mut positionals = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let arg = &rest[i];
        if arg == "--" {
            positionals.extend(rest[i + 1..].iter().cloned());
            break;
        }
        if arg.starts_with('-') && arg != "-" {
            let (occurrence, used) = read_flag(rest, i, command, |spec| {
                spec.scope == Scope::Global
                    || spec.scope == Scope::Both
                    || (spec.scope == Scope::Init && command == "init")
                    || (spec.scope == Scope::Join && command == "join")
            })?;
            occurrences.push(occurrence);
            i += used;
        } else {
            positionals.push(arg.clone());
            i += 1;
        }
    }
    if occurrences.iter().any(|o| o.spec.name == "help") {
        return Ok(Invocation::SubcommandHelp { command });
    }
    for occurrence in &occurrences {
        check_disposition(occurrence)?;
    }
    let mut seen: Vec<&'static str> = Vec::new();
    for occurrence in &occurrences {
        if occurrence.spec.kind != Kind::List {
            if seen.contains(&occurrence.spec.name) {
                return Err(FlagError::Twice {
                    flag: occurrence.spec.name,
                });
            }
            seen.push(occurrence.spec.name);
        }
    }
    let common = common_flags(&occurrences)?;
    if command == "init" {
        if let Some(extra) = positionals.first() {
            return Err(FlagError::ExtraArgument {
                command,
                argument: extra.clone(),
            });
        }
        Ok(Invocation::Init(Box::new(init_flags(
            common,
            &occurrences,
        )?)))
    } else {
        if let Some(extra) = positionals.get(1) {
            return Err(FlagError::ExtraArgument {
                command,
                argument: extra.clone(),
            });
        }
        let endpoint = positionals.first().cloned();
        Ok(Invocation::Join(Box::new(join_flags(
            common,
            endpoint,
            &occurrences,
        )?)))
    }
}

fn first_positional(args: &[String]) -> Option<&str> {
    // Only a leading word counts: `init phase`, not `init --node-name phase`.
    args.first()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
}

fn check_disposition(occurrence: &Occurrence) -> Result<(), FlagError> {
    if let Disposition::Rejected(reason) = occurrence.spec.disposition {
        return Err(FlagError::Rejected {
            flag: occurrence.spec.name,
            reason: Msgid(reason),
        });
    }
    Ok(())
}
