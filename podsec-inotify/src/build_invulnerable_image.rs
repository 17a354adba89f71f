//! podsec-inotify-build-invulnerable-image: build an image and keep it only if trivy finds no
//! HIGH or CRITICAL vulnerability.
//!
//! As upstream: with a Dockerfile, `podman build <options> -f <dockerfile> -t <image> <context>`
//! then a scan, and the freshly built image is removed when the scan finds HIGH or CRITICAL
//! vulnerabilities or fails; with only an image name, a scan of that image, never removed.
//! Exit status 0 clean, 1 usage, 2 build failed, 3 scan failed, 4 HIGH, 5 CRITICAL.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use clap::Parser;
use podsec_common::cli::{self, Failure};
use podsec_common::log::{Level, Logger};
use podsec_common::tr;

use crate::check_containers::escape;
use crate::trivy::{self, Scanner, TrivyError};

pub const NAME: &str = "podsec-inotify-build-invulnerable-image";

/// Build an image with podman (when a Dockerfile is given) and scan it with trivy; a built image
/// with HIGH or CRITICAL vulnerabilities is removed. With only an image name, scan that image.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Exit status: 0 clean, 1 usage, 2 build failed, 3 trivy failed, 4 HIGH found, 5 CRITICAL found.\n\
Environment:\n  U7S_TRIVY_SERVER    trivy server host (default trivy.local; port 4954)"
)]
pub struct Args {
    /// Name of the image to build or scan
    #[arg(value_name = "image_name")]
    pub image: Option<String>,
    /// Dockerfile to build from
    #[arg(value_name = "dockerfile")]
    pub dockerfile: Option<PathBuf>,
    /// Build context directory (default .)
    #[arg(value_name = "context_dir")]
    pub context: Option<PathBuf>,
    /// Further options for podman build
    #[arg(
        value_name = "podman build options",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub build_options: Vec<String>,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum BuildError {
    #[error(transparent)]
    Trivy(#[from] TrivyError),
    #[error(
        "Format: {NAME} <image_name> [ <docker file> [ <context directory> [ <podman build options> ] ] ]"
    )]
    Usage,
    #[error("'{0}' is not an image name")]
    BadImage(String),
}

impl Failure for BuildError {}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(args: Args) -> Result<ExitCode, BuildError> {
    let image = args.image.clone().ok_or(BuildError::Usage)?;
    if image.is_empty()
        || image.starts_with('-')
        || image.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(BuildError::BadImage(image));
    }
    let scanner = Scanner::from_env()?;
    let logger = Logger::new(NAME);
    let user = current_user();
    let built = args.dockerfile.is_some();
    if let Some(dockerfile) = &args.dockerfile {
        let context = args.context.clone().unwrap_or_else(|| PathBuf::from("."));
        // Outside the host seam: the caller's own podman build, run as the caller.
        let status = Command::new(&scanner.podman)
            .arg("build")
            .args(&args.build_options)
            .arg("-f")
            .arg(dockerfile)
            .arg("-t")
            .arg(&image)
            .arg(&context)
            .stdin(Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            let message = format!(
                "Building image {} failed. Image analysis is skipped.",
                escape(image.as_bytes())
            );
            eprintln!("{message}");
            logger.log(Level::Fatal, &message);
            return Ok(ExitCode::from(2));
        }
    }
    let (outcome, report) = scanner.scan(&image, None, None)?;
    let message = outcome.message(&image, &user);
    eprintln!("{message}");
    if let Some(report) = &report {
        eprint!("{}", trivy::findings_text(report));
    }
    if let Some(level) = outcome.level() {
        logger.log(level, &message);
    }
    let code = outcome.code();
    if built && code > 0 {
        // Outside the host seam: removing the image this command built, as its caller.
        let removed = Command::new(&scanner.podman)
            .args(["rmi", "--", &image])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if removed {
            eprintln!(
                "{}",
                tr!(
                    "Image {image} of user {user} has been deleted.",
                    image = escape(image.as_bytes()),
                    user = escape(user.as_bytes())
                )
            );
        } else {
            eprintln!(
                "{NAME}: {}",
                tr!(
                    "could not remove the image {image}",
                    image = escape(image.as_bytes())
                )
            );
        }
    }
    Ok(ExitCode::from(code))
}

fn current_user() -> String {
    let uid = nix::unistd::geteuid().as_raw();
    podsec_common::host::users::find_user_by_uid(uid)
        .ok()
        .flatten()
        .map(|a| a.name)
        .unwrap_or_else(|| uid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_as_upstream() {
        let args =
            Args::try_parse_from([NAME, "img", "Dockerfile", "ctx", "--pull=never", "--layers"])
                .unwrap();
        assert_eq!(args.image.as_deref(), Some("img"));
        assert_eq!(args.context, Some(PathBuf::from("ctx")));
        assert_eq!(args.build_options, ["--pull=never", "--layers"]);
        let args = Args::try_parse_from([NAME]).unwrap();
        assert!(matches!(run(args), Err(BuildError::Usage)));
        assert_eq!(BuildError::Usage.exit_code(), 1);
        let args = Args::try_parse_from([NAME, "--", "-x"]).unwrap();
        assert!(matches!(run(args), Err(BuildError::BadImage(_))));
    }
}
