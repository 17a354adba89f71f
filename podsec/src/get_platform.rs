//! podsec-get-platform: the ALT platform name used in registry paths.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, Failure};
use podsec_common::profile::OsRelease;
use podsec_common::tr;

pub const NAME: &str = "podsec-get-platform";
pub const PLATFORM_VARIABLE: &str = "U7S_PLATFORM";

/// Print the platform of this host (c10f, p10, p11, sisyphus, ...), the path prefix of its
/// images in the registry.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Environment:\n  U7S_PLATFORM    when set and not empty, printed as the platform"
)]
pub struct Args {}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum Error {
    #[error(
        "cannot determine the platform: /etc/os-release describes no ALT Linux system; set U7S_PLATFORM"
    )]
    Unknown,
}

impl Failure for Error {}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

/// The platform: a non-empty `U7S_PLATFORM` wins, else what os-release says.
pub fn platform(variable: Option<&str>, os: &OsRelease) -> Option<String> {
    match variable.filter(|v| !v.is_empty()) {
        Some(value) => Some(value.to_string()),
        None => os.alt_platform(),
    }
}

pub fn run(_args: Args) -> Result<ExitCode, Error> {
    let variable = std::env::var(PLATFORM_VARIABLE).ok();
    if let Some(value) = variable.as_deref().filter(|v| !v.is_empty()) {
        eprintln!(
            "{}",
            tr!(
                "The platform {value} is predefined by the variable {variable}. This value is taken.",
                value = value,
                variable = PLATFORM_VARIABLE
            )
        );
    }
    let platform =
        platform(variable.as_deref(), &OsRelease::load(Path::new("/"))).ok_or(Error::Unknown)?;
    println!("{platform}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_wins_over_os_release() {
        let alt = OsRelease::parse("ID=altlinux\nALT_BRANCH_ID=p11\n");
        assert_eq!(platform(Some("c10f"), &alt).as_deref(), Some("c10f"));
        assert_eq!(platform(Some(""), &alt).as_deref(), Some("p11"));
        assert_eq!(platform(None, &OsRelease::parse("ID=debian\n")), None);
    }
}
