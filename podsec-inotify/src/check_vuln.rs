//! podsec-inotify-check-vuln: scan the images of root and of every user with trivy.
//!
//! Upstream re-ran itself per user through `machinectl shell` (running login shells, losing
//! `-m`), enabled podman.socket for good, scraped trivy's table, stopped at the first untagged
//! image and mailed an almost empty body. Here the images come from each store's images.json
//! (tagged or not), each is scanned as its owner (see [`crate::trivy`]), every outcome is
//! printed, HIGH and CRITICAL (and trivy failures) are logged at their priorities and mailed
//! with the findings themselves.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, Failure};
use podsec_common::i18n::Localize;
use podsec_common::log::Logger;
use podsec_common::tr;

use crate::check_containers::escape;
use crate::mail::{self, MailError};
use crate::storage::{self, Driver, ImageRecord, Owner, Store};
use crate::trivy::{self, Outcome, Report, Scanner, TrivyError};

pub const NAME: &str = "podsec-inotify-check-vuln";

/// Scan the images of the caller (all users' when run as root) for HIGH and CRITICAL
/// vulnerabilities on the trivy server, log the findings and mail them.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Each image is exported with podman save and read by trivy as its owner (no login \
shell, no podman socket); untagged images are scanned too. HIGH findings are logged as High, \
CRITICAL as Critical, a failed scan as Fatal. Exit status 0 after reporting, 3 if no image \
could be scanned, 1 if a mail could not be sent or the arguments are wrong.\n\
Environment:\n  U7S_TRIVY_SERVER    trivy server host (default trivy.local; port 4954)"
)]
pub struct Args {
    /// Mail each image's findings to this address
    #[arg(short = 'm', value_name = "email")]
    pub mail_to: Option<String>,
    /// Flags old unit files pass (`-vvv -c 100 >/dev/null 2>&1`): ignored with a warning
    #[arg(hide = true, allow_hyphen_values = true, trailing_var_arg = true)]
    pub stray: Vec<String>,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum VulnError {
    #[error(transparent)]
    Trivy(#[from] TrivyError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("cannot find the account of uid {0}")]
    NoAccount(u32),
}

impl Failure for VulnError {}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

/// One image to scan: where it is and whose it is.
#[derive(Debug, Clone)]
pub struct Target {
    pub owner: Owner,
    /// Drop to the owner's account (root scanning a user's image).
    pub drop_privileges: bool,
    pub graphroot: PathBuf,
    /// podman's own default store (else it is told `--root`).
    pub podman_default: bool,
    pub driver: Driver,
    pub image: ImageRecord,
}

impl Target {
    /// The name the messages use: the first tag, else `<none>@<short ID>`.
    pub fn name(&self) -> String {
        self.image
            .names
            .first()
            .cloned()
            .unwrap_or_else(|| format!("<none>@{}", &self.image.id[..self.image.id.len().min(12)]))
    }
}

pub fn run(args: Args) -> Result<ExitCode, VulnError> {
    for token in &args.stray {
        eprintln!(
            "{NAME}: {}",
            tr!(
                "warning: ignoring argument '{token}' (not an option of {name})",
                token = token,
                name = NAME
            )
        );
    }
    if let Some(to) = &args.mail_to {
        mail::check_address(to)?;
    }
    let scanner = Scanner::from_env()?;
    let logger = Logger::new(NAME);
    let uid = nix::unistd::geteuid().as_raw();
    let stores = if uid == 0 {
        let (stores, errors) = storage::all_stores();
        for error in errors {
            eprintln!(
                "{NAME}: {}",
                tr!(
                    "skipping a storage configuration: {error}",
                    error = error.localized()
                )
            );
        }
        stores
    } else {
        own_stores(uid)?
    };
    let mut mail_failed = false;
    let mut codes = Vec::new();
    for target in targets(&stores, uid == 0) {
        let owner = target.drop_privileges.then_some(&target.owner);
        let (outcome, report) = scanner.scan(
            &target.image.id,
            owner,
            (!target.podman_default).then_some(target.graphroot.as_path()),
        )?;
        codes.push(outcome.code());
        if let Err(e) = report_one(&target, &outcome, report.as_ref(), &logger, &args) {
            eprintln!("{NAME}: {}", e.localized());
            mail_failed = true;
        }
    }
    Ok(ExitCode::from(exit_status(&codes, mail_failed)))
}

/// 3 when there were images and not one could be scanned (the unit fails, so systemd shows
/// it), else 1 when a mail could not be sent, else 0: findings themselves are reported, not
/// an error of the run.
pub fn exit_status(codes: &[u8], mail_failed: bool) -> u8 {
    let failed = Outcome::Failed(String::new()).code();
    if !codes.is_empty() && codes.iter().all(|c| *c == failed) {
        failed
    } else if mail_failed {
        1
    } else {
        0
    }
}

/// A user's own stores (check-vuln run by that user).
fn own_stores(uid: u32) -> Result<Vec<Store>, VulnError> {
    let account = podsec_common::host::users::find_user_by_uid(uid)
        .ok()
        .flatten()
        .ok_or(VulnError::NoAccount(uid))?;
    let owner = Owner {
        name: account.name,
        uid,
        gid: account.gid,
        home: account.home,
    };
    let system = storage::StorageConf::system().unwrap_or_default();
    let user = storage::user_storage_conf(&owner).ok().flatten();
    Ok(Store::rootless(&owner, &system, user.as_ref()))
}

/// Every image of every store, once per store (two paths to one store count once).
pub fn targets(stores: &[Store], as_root: bool) -> Vec<Target> {
    let mut seen_stores = Vec::new();
    let mut targets = Vec::new();
    for store in stores {
        let graphroot = match store.open() {
            Ok(graphroot) => graphroot,
            Err(e) if e.is_missing() => continue,
            Err(e) => {
                eprintln!(
                    "{NAME}: {}",
                    tr!(
                        "skipping the store of {user}: {error}",
                        user = store.owner.name,
                        error = e.localized()
                    )
                );
                continue;
            }
        };
        if let Ok(identity) = graphroot.identity() {
            if seen_stores.contains(&identity) {
                continue;
            }
            seen_stores.push(identity);
        }
        for driver in Driver::ALL {
            let images = match storage::read_images(&graphroot, driver) {
                Ok(images) => images,
                Err(e) => {
                    eprintln!(
                        "{NAME}: {}",
                        tr!(
                            "skipping the {driver} images of {user}: {error}",
                            driver = driver.name(),
                            user = store.owner.name,
                            error = e.localized()
                        )
                    );
                    continue;
                }
            };
            for image in images {
                targets.push(Target {
                    owner: store.owner.clone(),
                    drop_privileges: as_root && store.rootless,
                    graphroot: store.graphroot.clone(),
                    podman_default: store.podman_default(),
                    driver,
                    image,
                });
            }
        }
    }
    targets
}

fn report_one(
    target: &Target,
    outcome: &Outcome,
    report: Option<&Report>,
    logger: &Logger,
    args: &Args,
) -> Result<(), MailError> {
    let name = target.name();
    let message = outcome.message(&name, &target.owner.name);
    println!("{message}");
    let findings = report.map(trivy::findings_text).unwrap_or_default();
    print!("{findings}");
    if let Some(level) = outcome.level() {
        logger.log(level, &message);
    }
    match (&args.mail_to, outcome.code()) {
        (Some(to), code) if code > 0 => {
            let subject = format!(
                "Vulnerabilities found in image {name} of user {}",
                target.owner.name
            );
            mail::send(to, &subject, &mail_body(target, &message, &findings))
        }
        _ => Ok(()),
    }
}

pub fn mail_body(target: &Target, message: &str, findings: &str) -> String {
    let mut body = format!(
        "{message}\n\nImage: {} (ID {})\nUser: {}\nStore: {} ({} driver)\n",
        escape(target.name().as_bytes()),
        target.image.id,
        escape(target.owner.name.as_bytes()),
        escape(target.graphroot.as_os_str().as_encoded_bytes()),
        target.driver.name()
    );
    if !findings.is_empty() {
        body.push_str("\nFindings (severity, vulnerability, package, installed version):\n");
        body.push_str(findings);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_unit_flags_are_tolerated_and_mail_parsed() {
        let args = Args::try_parse_from([NAME, "-vvv", "-c", "100", ">/dev/null", "2>&1"]).unwrap();
        assert_eq!(args.mail_to, None);
        assert_eq!(args.stray.len(), 5);
        // as upstream, -m counts first; what follows it is the unit's leftovers
        let args = Args::try_parse_from([NAME, "-m", "root", "-vvv", "-c", "100"]).unwrap();
        assert_eq!(args.mail_to.as_deref(), Some("root"));
        assert_eq!(args.stray, ["-vvv", "-c", "100"]);
        let args = Args::try_parse_from([NAME, "-m", "root"]).unwrap();
        assert_eq!(args.mail_to.as_deref(), Some("root"));
    }

    #[test]
    fn every_scan_failed_is_a_failure_of_the_run() {
        assert_eq!(exit_status(&[3, 3], false), 3);
        assert_eq!(exit_status(&[3], true), 3);
        assert_eq!(
            exit_status(&[3, 5], false),
            0,
            "findings are reported, not failures"
        );
        assert_eq!(exit_status(&[3, 0], true), 1);
        assert_eq!(exit_status(&[], false), 0, "no images: nothing failed");
    }

    #[test]
    fn image_names_from_a_users_store_cannot_forge_journal_or_mail_lines() {
        let forged = "localhost/x:1\nCritical: 999: forged\r\x1b[2J";
        let mut target = Target {
            owner: Owner {
                name: "mallory".into(),
                uid: 1000,
                gid: 1000,
                home: "/home/mallory".into(),
            },
            drop_privileges: true,
            graphroot: "/home/mallory/.local/share/containers/storage".into(),
            podman_default: true,
            driver: Driver::Overlay,
            image: ImageRecord {
                id: "ab".repeat(32),
                names: vec![forged.into()],
                digest: None,
            },
        };
        for outcome in [
            Outcome::Failed("trivy: x".into()),
            Outcome::Critical(Default::default()),
        ] {
            let line = podsec_common::log::Logger::line(
                outcome.level().unwrap(),
                &outcome.message(&target.name(), &target.owner.name),
            );
            assert!(!line.contains(['\n', '\r', '\x1b']), "{line:?}");
            assert!(
                line.contains("localhost/x:1\\nCritical: 999: forged\\r\\x1b[2J"),
                "{line}"
            );
        }
        let body = mail_body(&target, "M.", "");
        assert_eq!(
            body.lines().nth(2),
            Some(
                "Image: localhost/x:1\\nCritical: 999: forged\\r\\x1b[2J (ID abababababababababababababababababababababababababababababababab)"
            )
        );
        // an untagged image is named by its ID, cut on a character boundary
        target.image.names.clear();
        assert_eq!(target.name(), "<none>@abababababab");
    }

    #[test]
    fn untagged_images_do_not_stop_the_listing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("overlay-images")).unwrap();
        std::fs::write(
            dir.path().join("overlay-images/images.json"),
            r#"[{"id":"1111111111111111aaaa","names":["localhost/a:1"]},{"id":"2222222222222222bbbb"},{"id":"3333","names":["localhost/c:3"]}]"#,
        )
        .unwrap();
        let store = Store {
            owner: Owner {
                name: "root".into(),
                uid: 0,
                gid: 0,
                home: "/root".into(),
            },
            graphroot: dir.path().to_path_buf(),
            rootless: false,
        };
        let found = targets(&[store.clone(), store], true);
        let names: Vec<String> = found.iter().map(Target::name).collect();
        assert_eq!(
            names,
            ["localhost/a:1", "<none>@222222222222", "localhost/c:3"]
        );
        assert!(found.iter().all(|t| !t.drop_privileges));
        let body = mail_body(&found[1], "M.", "HIGH CVE-1 p 1 (fixed in 2): t\n");
        assert!(
            body.starts_with(
                "M.\n\nImage: <none>@222222222222 (ID 2222222222222222bbbb)\nUser: root\n"
            ),
            "{body}"
        );
        assert!(body.ends_with("HIGH CVE-1 p 1 (fixed in 2): t\n"));
    }
}
