//! podsec-inotify-check-images: Nagios plugin checking the signatures of every user's images.
//!
//! Checked: root and every account with container storage, except image makers (podman_dev),
//! as upstream. Each user's image list is read from their storage directly (overlay and vfs;
//! upstream ran `su - <user> -c 'podman images'`, i.e. the user's login shell, as root), and each
//! name is classified under the user's own policy and registries.d (see [`verify`]); signatures
//! are fetched from the lookaside store registries.d names for the image (all `*.yaml` merged,
//! `default-docker` as fallback, upstream's defect 13) and verified with sequoia against the
//! keys of the policy (upstream only checked that `signature-1` could be downloaded).
//!
//! | weight | finding |
//! |---|---|
//! | 101 | users whose policy accepts images from registries without a signature |
//! | 102 | users with unsigned images |
//! | 103 | users with images outside every policy scope (or in a rejected one) |
//! | 104 | users with images whose signatures do not verify (new: tampered, untrusted key, wrong identity) |

mod fetch;
pub mod verify;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::error_chain;
use podsec_common::host::beneath::Tree;
use podsec_common::host::users::{self, GroupIndex};
use podsec_common::image_ref::ImageRef;
use podsec_common::registries_d::{Access, builtin_default};
use serde::Serialize;

use crate::check_policy::PolicyFacts;
use crate::inventory::{self, Paths, UserConfig};
use crate::plugin::{self, Finding, PluginCommand, Report, Wording, quoted};
use crate::plugin_args::PluginArgs;
use fetch::Fetcher;
use verify::{Class, KeyCache, SignatureSource, Stored, Verdict};

pub const NAME: &str = "podsec-inotify-check-images";

const WORDING: Wording = Wording {
    ok: "The images of all users comply with the containerization policies",
    violation: "Images that violate established policies, users",
};

const HELP: &str = concat!(
    "Weights: 101 the user's policy accepts registries without signatures; 102 unsigned images; ",
    "103 images outside the policy's scopes; 104 images whose signatures do not verify against the ",
    "keys of the user's policy. The metric is the sum of the weights found. Image makers ",
    "(group podman_dev) are not checked.\n",
    "Without any range option: -c 100; without any argument also -vv.\n",
    crate::ranges_help!()
);

/// Check the images of root and every podman user: each signature is verified against the
/// keys of the user's policy (signed, unsigned, invalid, out of policy); report the
/// weighted findings as a Nagios plugin and to syslog.
#[derive(Parser, Debug)]
#[command(name = NAME, version, disable_help_flag = true, after_help = HELP)]
pub struct Args {
    #[command(flatten)]
    pub plugin: PluginArgs,
}

impl PluginCommand for Args {
    fn plugin(&self) -> &PluginArgs {
        &self.plugin
    }
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    plugin::main::<Args>(NAME, &WORDING, argv, |_| {
        let accounts = users::all_accounts();
        let groups = GroupIndex::load();
        collect(&Paths::default(), &accounts, &groups, &mut Fetcher::new())
    })
}

/// One classified image name of one user.
#[derive(Debug, Clone, Serialize)]
pub struct CheckedImage {
    pub name: String,
    pub id: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckedUser {
    pub user: String,
    pub policy: String,
    pub registries_d: String,
    pub storage: String,
    pub unsigned_registries: Vec<String>,
    pub images: Vec<CheckedImage>,
}

/// A user's images with the class of each name.
fn check_user(
    user: &UserConfig,
    source: &mut dyn SignatureSource,
    keys: &mut KeyCache,
    errors: &mut Vec<String>,
) -> Option<CheckedUser> {
    let label = serde_json::to_string(user.name()).expect("a string serialises");
    let policy = match &user.policy.value {
        Ok(policy) => policy.clone(),
        Err(e) => {
            errors.push(format!("user {label}: {e}"));
            return None;
        }
    };
    let registries = match &user.registries_d.value {
        Ok(registries) => registries.clone(),
        Err(e) => {
            errors.push(format!("user {label}: {e}"));
            return None;
        }
    };
    let store = match user.store() {
        Ok(Some(store)) => store,
        Ok(None) => return None,
        Err(e) => {
            errors.push(format!("user {label}: {e}"));
            return None;
        }
    };
    let images = match store.images() {
        Ok(images) => images,
        Err(e) => {
            errors.push(format!("user {label}: {}", error_chain(&e)));
            return None;
        }
    };
    let fallback = builtin_default(user.account.uid, &user.account.home);
    let lookaside = |image: &ImageRef| {
        registries
            .storage_url(image, Access::Read)
            .map(str::to_string)
            .unwrap_or_else(|| fallback.clone())
    };
    let mut checked = Vec::new();
    for image in &images {
        let digests = image.manifest_digests();
        let manifest = |digest: &str| store.manifest(image, digest).ok().flatten();
        let stored = Stored {
            digests: &digests,
            manifest: &manifest,
        };
        let names: Vec<Option<&str>> = if image.names.is_empty() {
            vec![None]
        } else {
            image.names.iter().map(|n| Some(n.as_str())).collect()
        };
        for name in names {
            let shown = name.map(str::to_string).unwrap_or_else(|| {
                format!(
                    "<untagged {}>",
                    image.id.chars().take(12).collect::<String>()
                )
            });
            match verify::classify(name, &stored, &policy, &lookaside, source, keys) {
                Ok(verdict) => checked.push(CheckedImage {
                    name: shown,
                    id: image.id.clone(),
                    verdict,
                }),
                Err(e) => errors.push(format!("user {label}: image {}: {e}", quoted(&[shown]))),
            }
        }
    }
    Some(CheckedUser {
        user: user.name().to_string(),
        policy: user.policy.path.display().to_string(),
        registries_d: user.registries_d.path.display().to_string(),
        storage: store.path().display().to_string(),
        unsigned_registries: PolicyFacts::of(&policy).unsigned_scopes,
        images: checked,
    })
}

/// `"alice": "a:1", "b:2"; "root": "c:3"`
fn per_user(users: &BTreeMap<String, Vec<String>>) -> String {
    users
        .iter()
        .map(|(user, items)| {
            format!(
                "{}: {}",
                quoted(std::slice::from_ref(user)),
                quoted(items).replace("\" \"", "\", \"")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The findings for the checked users.
pub fn findings(checked: &[CheckedUser]) -> Vec<Finding> {
    let mut out = Vec::new();
    let registries: BTreeMap<String, Vec<String>> = checked
        .iter()
        .filter(|u| !u.unsigned_registries.is_empty())
        .map(|u| (u.user.clone(), u.unsigned_registries.clone()))
        .collect();
    if !registries.is_empty() {
        let users: Vec<String> = registries.keys().cloned().collect();
        out.push(Finding {
            weight: 101,
            check: "registries-without-signature",
            heading: "with registries that do not require signatures".into(),
            message: format!(
                "Users {} have registries that do not support electronic signatures: {}",
                quoted(&users),
                per_user(&registries)
            ),
            users,
        });
    }
    let classes = [
        (
            102,
            Class::Unsigned,
            "unsigned-images",
            "with unsigned images",
            "have unsigned images",
        ),
        (
            103,
            Class::OutOfPolicy,
            "images-out-of-policy",
            "with images outside of supported policies",
            "have images outside of supported policies",
        ),
        (
            104,
            Class::Invalid,
            "invalid-signatures",
            "with images whose signatures do not verify",
            "have images whose signatures do not verify against the keys of their policy",
        ),
    ];
    for (weight, class, check, heading, text) in classes {
        let by_user: BTreeMap<String, Vec<String>> = checked
            .iter()
            .filter_map(|u| {
                let names: Vec<String> = u
                    .images
                    .iter()
                    .filter(|i| i.verdict.class == class)
                    .map(|i| i.name.clone())
                    .collect();
                (!names.is_empty()).then(|| (u.user.clone(), names))
            })
            .collect();
        if by_user.is_empty() {
            continue;
        }
        let users: Vec<String> = by_user.keys().cloned().collect();
        out.push(Finding {
            weight,
            check,
            heading: heading.into(),
            message: format!("Users {} {text}: {}", quoted(&users), per_user(&by_user)),
            users,
        });
    }
    out
}

/// The whole check over the accounts given.
pub fn collect(
    paths: &Paths,
    accounts: &[users::Account],
    groups: &GroupIndex,
    fetcher: &mut Fetcher,
) -> Report {
    let mut keys = KeyCache::default();
    let mut checked = Vec::new();
    let errors = inventory::visit(
        paths,
        accounts,
        groups,
        |c| {
            // Image makers hold unsigned images by trade (upstream skipped them too).
            let maker = c.in_podman_dev && c.account.uid != 0;
            !maker && (c.account.uid == 0 || c.has_storage())
        },
        |user, errors| {
            let home = user
                .home
                .as_ref()
                .and_then(|home| home.tree().ok().flatten());
            fetcher.set_home(home.map(Tree::path));
            if let Some(result) = check_user(&user, fetcher, &mut keys, errors) {
                checked.push(result);
            }
        },
    );
    let mut details = Vec::new();
    for user in &checked {
        details.push(format!(
            "checked {}: storage {}, policy {}, registries.d {}, {} image names",
            quoted(std::slice::from_ref(&user.user)),
            user.storage,
            user.policy,
            user.registries_d,
            user.images.len()
        ));
        for image in &user.images {
            details.push(format!(
                "  {} {}: {}",
                quoted(std::slice::from_ref(&image.name)),
                image.verdict.class.word(),
                image.verdict.detail
            ));
        }
    }
    Report {
        findings: findings(&checked),
        errors,
        details,
        data: serde_json::json!({ "users": checked }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(name: &str, class: Class) -> CheckedImage {
        CheckedImage {
            name: name.into(),
            id: "a".repeat(64),
            verdict: Verdict {
                class,
                detail: String::new(),
                signer: None,
            },
        }
    }

    fn user(name: &str, unsigned: &[&str], images: Vec<CheckedImage>) -> CheckedUser {
        CheckedUser {
            user: name.into(),
            policy: String::new(),
            registries_d: String::new(),
            storage: String::new(),
            unsigned_registries: unsigned.iter().map(|s| s.to_string()).collect(),
            images,
        }
    }

    #[test]
    fn findings_group_images_by_class_and_user() {
        let checked = [
            user(
                "root",
                &[],
                vec![
                    image("registry.local/demo/app:1", Class::Signed),
                    image("localhost/bb:latest", Class::OutOfPolicy),
                ],
            ),
            user(
                "alice",
                &["quay.io"],
                vec![
                    image("registry.local/demo/app:1", Class::Signed),
                    image("registry.local/demo/unsigned:1", Class::Unsigned),
                    image("registry.local/demo/tampered:1", Class::Invalid),
                    image("registry.local/demo/foreign:1", Class::Invalid),
                    image("localhost/bb:latest", Class::OutOfPolicy),
                ],
            ),
        ];
        let found = findings(&checked);
        let summary: Vec<(u64, Vec<String>)> =
            found.iter().map(|f| (f.weight, f.users.clone())).collect();
        assert_eq!(
            summary,
            [
                (101, vec!["alice".to_string()]),
                (102, vec!["alice".to_string()]),
                (103, vec!["alice".to_string(), "root".to_string()]),
                (104, vec!["alice".to_string()]),
            ]
        );
        assert_eq!(
            found[0].message,
            r#"Users "alice" have registries that do not support electronic signatures: "alice": "quay.io""#
        );
        assert_eq!(
            found[2].message,
            r#"Users "alice" "root" have images outside of supported policies: "alice": "localhost/bb:latest"; "root": "localhost/bb:latest""#
        );
        assert_eq!(
            found[3].message,
            r#"Users "alice" have images whose signatures do not verify against the keys of their policy: "alice": "registry.local/demo/tampered:1", "registry.local/demo/foreign:1""#
        );
        assert!(
            findings(&[user(
                "root",
                &[],
                vec![image("registry.local/demo/app:1", Class::Signed)]
            )])
            .is_empty()
        );
    }
}
