//! podsec-inotify-check-policy: Nagios plugin checking the container policies of all users.
//!
//! Checked: root and every account that is in group podman or podman_dev or has container
//! storage. The findings and their weights (upstream's, with its defects fixed):
//!
//! | weight | finding |
//! |---|---|
//! | 101 | users (not root) with images who are in neither podman nor podman_dev |
//! | 102 | users not in podman_dev whose policy's `default` does not reject |
//! | 103 | users whose policy requires a signature for no scope on registry.local |
//! | 104 | users whose policy has docker scopes that accept images without a signature |
//! | 105 | users whose policy accepts images through transports other than docker |
//! | 106 | users whose default signature store is not http://sigstore.local:81/sigstore/ |
//! | 107 | podman users (not podman_dev) who are also administrators (wheel; sudo on Debian) |
//! | 90·k/N | the k of the N podman-only users without ~/.config/containers/storage.conf |
//! | 90·k/N | the k of the N podman-only users who can change ~/.config/containers |
//!
//! Group membership is exact (upstream matched substrings), each finding's weight is added once
//! to the metric (N = 0 gives no finding instead of a division by zero), and whether a user can
//! change the configuration is decided from owner, mode and immutable attribute of the entries
//! without writing anything or following links (upstream wrote a `.test` file as root, through
//! any symlink the user had planted).

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::host::beneath::{Entry, Kind, Tree};
use podsec_common::host::users::{self, GroupIndex};
use podsec_common::policy::{Policy, Requirement};
use podsec_common::profile::Profile;
use serde::Serialize;

use crate::inventory::{self, Home, Paths, USER_CONFIG_DIR, UserConfig};
use crate::plugin::{self, Finding, PluginCommand, Report, Wording, quoted};
use crate::plugin_args::PluginArgs;

pub const NAME: &str = "podsec-inotify-check-policy";

/// The signature store every user should read by default, and the registry whose images must
/// be signed.
pub use podsec_common::trust_chain::{LOCAL_REGISTRY, SIGSTORE_URL};

const WORDING: Wording = Wording {
    ok: "Containerization policies are not violated",
    violation: "Violation of user containerization policies by users",
};

/// Check the container policies of root and every podman user (default policy, signature
/// requirements, transports, signature store, groups, locked configuration) and report the
/// weighted findings as a Nagios plugin and to syslog.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    disable_help_flag = true,
    after_help = HELP
)]
pub struct Args {
    #[command(flatten)]
    pub plugin: PluginArgs,
}

const HELP: &str = concat!(
    "Weights: 101 users with images outside groups podman and podman_dev; 102 default policy ",
    "not reject (not podman_dev); 103 no signature required on registry.local; 104 registries ",
    "accepted without signature; 105 transports other than docker; 106 default signature store ",
    "not http://sigstore.local:81/sigstore/; 107 podman users who are administrators (wheel, sudo ",
    "on Debian); 90*k/N podman users without ~/.config/containers/storage.conf; 90*k/N podman ",
    "users who can change ~/.config/containers. The metric is the sum of the weights found.\n",
    "Without any range option: -c 100; without any argument also -vv.\n",
    crate::ranges_help!()
);

impl PluginCommand for Args {
    fn plugin(&self) -> &PluginArgs {
        &self.plugin
    }
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    plugin::main::<Args>(NAME, &WORDING, argv, |args| {
        let accounts = users::all_accounts();
        let groups = GroupIndex::load();
        collect(
            &Paths::default(),
            &accounts,
            &groups,
            Profile::detect().admin_group,
            args.plugin.json,
        )
    })
}

/// What the checks need to know about one user's policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyFacts {
    pub default_rejects: bool,
    /// Docker scopes that require a signature (signedBy or sigstoreSigned).
    pub signed_scopes: Vec<String>,
    /// Docker scopes (`""` = every other registry) that accept images without a signature.
    pub unsigned_scopes: Vec<String>,
    /// Transports other than docker through which some image is accepted.
    pub other_transports: Vec<String>,
}

/// A requirement list accepts an image without any signature when it has no reject and no
/// signature requirement (all requirements must hold, so one reject rejects).
fn accepts_unsigned(requirements: &[Requirement]) -> bool {
    !requirements.iter().any(|r| {
        matches!(
            r,
            Requirement::Reject(_) | Requirement::SignedBy(_) | Requirement::SigstoreSigned(_)
        ) || matches!(r, Requirement::Other(_))
    })
}

fn requires_signature(requirements: &[Requirement]) -> bool {
    requirements
        .iter()
        .any(|r| matches!(r, Requirement::SignedBy(_) | Requirement::SigstoreSigned(_)))
        && !requirements
            .iter()
            .any(|r| matches!(r, Requirement::Reject(_)))
}

fn rejects(requirements: &[Requirement]) -> bool {
    requirements
        .iter()
        .any(|r| matches!(r, Requirement::Reject(_) | Requirement::Other(_)))
}

impl PolicyFacts {
    pub fn of(policy: &Policy) -> PolicyFacts {
        let mut facts = PolicyFacts {
            default_rejects: rejects(&policy.default),
            ..PolicyFacts::default()
        };
        for (transport, scopes) in &policy.transports {
            if transport == "docker" {
                for (scope, requirements) in scopes {
                    if requires_signature(requirements) {
                        facts.signed_scopes.push(scope.clone());
                    } else if accepts_unsigned(requirements) {
                        facts.unsigned_scopes.push(scope.clone());
                    }
                }
            } else {
                // A transport without scopes falls back to `default`, which 102 covers.
                let accepting = scopes.values().any(|requirements| !rejects(requirements));
                if accepting {
                    facts.other_transports.push(transport.clone());
                }
            }
        }
        facts
    }

    /// Whether a signature is required for some scope on registry.local (the host itself, or a
    /// namespace of it; upstream matched the substring, so `myregistry.local` counted).
    pub fn signs_local_registry(&self) -> bool {
        self.signed_scopes.iter().any(|scope| {
            scope == LOCAL_REGISTRY
                || scope
                    .strip_prefix(LOCAL_REGISTRY)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

/// Everything the checks use about one user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Facts {
    pub user: String,
    pub root: bool,
    pub groups: Vec<String>,
    pub in_podman: bool,
    pub in_podman_dev: bool,
    pub in_admin_group: bool,
    pub has_images: bool,
    /// `None` when the policy could not be read (an error of its own).
    pub policy: Option<PolicyFacts>,
    pub policy_file: String,
    /// The read URL of `default-docker`.
    pub default_lookaside: Option<String>,
    /// False when registries.d could not be read (an error of its own).
    pub registries_d_readable: bool,
    pub registries_d: String,
    pub storage_conf: bool,
    pub can_change_config: bool,
}

impl Facts {
    fn podman_only(&self) -> bool {
        !self.root && self.in_podman && !self.in_podman_dev
    }
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The findings for a set of users, in weight order.
pub fn findings(facts: &[Facts]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut add = |weight: u64,
                   check: &'static str,
                   heading: String,
                   users: Vec<String>,
                   message: &dyn Fn(&str) -> String| {
        if !users.is_empty() {
            let list = quoted(&users);
            out.push(Finding {
                weight,
                check,
                heading,
                message: message(&list),
                users,
            });
        }
    };
    let select = |keep: &dyn Fn(&Facts) -> bool| -> Vec<String> {
        facts
            .iter()
            .filter(|f| keep(f))
            .map(|f| f.user.clone())
            .collect()
    };
    let with_policy = |keep: &dyn Fn(&PolicyFacts) -> bool| -> Vec<String> {
        facts
            .iter()
            .filter(|f| f.policy.as_ref().is_some_and(keep))
            .map(|f| f.user.clone())
            .collect()
    };
    let detail = |items: &dyn Fn(&PolicyFacts) -> &Vec<String>| -> String {
        facts
            .iter()
            .filter_map(|f| {
                let policy = f.policy.as_ref()?;
                let list = items(policy);
                (!list.is_empty()).then(|| {
                    format!(
                        "{}: {}",
                        quoted(std::slice::from_ref(&f.user)),
                        quoted(list)
                    )
                })
            })
            .collect::<Vec<_>>()
            .join("; ")
    };

    add(
        101,
        "not-in-podman-group",
        "outside the podman group".into(),
        select(&|f| !f.root && !f.in_podman && !f.in_podman_dev && f.has_images),
        &|u| format!("Users {u} have images but are not in the podman group"),
    );
    add(
        102,
        "default-policy-not-reject",
        "capable of receiving any image".into(),
        facts
            .iter()
            .filter(|f| !f.in_podman_dev && f.policy.as_ref().is_some_and(|p| !p.default_rejects))
            .map(|f| f.user.clone())
            .collect(),
        &|u| {
            format!(
                "Users {u} have defaultPolicy!=reject in policy.json but are not in the podman_dev group"
            )
        },
    );
    add(
        103,
        "registry-local-unsigned",
        "capable of getting a local image without a signature".into(),
        with_policy(&|p| !p.signs_local_registry()),
        &|u| {
            format!(
                "Users {u} do not have registry.local in the list of registries for which the presence of digital image signature is checked"
            )
        },
    );
    let unsigned = detail(&|p| &p.unsigned_scopes);
    add(
        104,
        "registries-without-signature",
        "capable of receiving any image without a signature".into(),
        with_policy(&|p| !p.unsigned_scopes.is_empty()),
        &|u| {
            format!(
                "Users {u} have registries in the policy for which the presence of an electronic image signature is not checked ({unsigned})"
            )
        },
    );
    let transports = detail(&|p| &p.other_transports);
    add(
        105,
        "forbidden-transports",
        "capable of receiving any image via prohibited transport".into(),
        with_policy(&|p| !p.other_transports.is_empty()),
        &|u| {
            format!(
                "Users {u} have transports other than docker in the list of supported transports ({transports})"
            )
        },
    );
    add(
        106,
        "default-signature-store",
        "not using a local signature store".into(),
        select(&|f| {
            f.registries_d_readable
                && !f
                    .default_lookaside
                    .as_deref()
                    .is_some_and(|u| same_url(u, SIGSTORE_URL))
        }),
        &|u| {
            format!(
                "Users {u} do not use the signature store {SIGSTORE_URL} as the default signature store"
            )
        },
    );
    add(
        107,
        "podman-and-admin",
        "included in the administrators' group".into(),
        select(&|f| f.podman_only() && f.in_admin_group),
        &|u| format!("Users {u} are members of the podman group and of the administrators' group"),
    );
    // The two shares: of the podman-only users (upstream divided by zero when there were none).
    let podman_only = facts.iter().filter(|f| f.podman_only()).count() as u64;
    let share = |users: &Vec<String>| 90 * users.len() as u64 / podman_only.max(1);
    let without_conf = select(&|f| f.podman_only() && !f.storage_conf);
    add(
        share(&without_conf),
        "no-storage-conf",
        "without a config file".into(),
        without_conf.clone(),
        &|u| format!("Users {u} do not have config file {USER_CONFIG_DIR}/storage.conf"),
    );
    let changeable = select(&|f| f.podman_only() && f.storage_conf && f.can_change_config);
    add(
        share(&changeable),
        "changeable-config",
        "able to change configuration".into(),
        changeable.clone(),
        &|u| format!("Users {u} have writable configuration directory {USER_CONFIG_DIR}"),
    );
    out
}

/// Whether `user` may write into an entry: as its owner (who can chmod it) or through group or
/// other write bits; an immutable entry cannot be changed by anyone but root.
fn writable(entry: &Entry, uid: u32, gids: &[u32]) -> bool {
    !entry.immutable
        && (entry.uid == uid
            || (entry.mode & 0o020 != 0 && gids.contains(&entry.gid))
            || entry.mode & 0o002 != 0)
}

/// Whether `user` can make `~/.config/containers` say something else: it is a link or not a
/// directory, it or storage.conf is writable to them, or they can rename it away (it is not
/// immutable and ~/.config is writable to them, unless the sticky bit protects it). Nothing is
/// written and no link followed. (Renaming ~/.config itself, like `XDG_CONFIG_HOME`, is beyond
/// what a locked directory can prevent; see docs/security.md.) `config_dir` is the directory as
/// the inventory opened it: reached without a link, its own entry and its parent's save walking
/// the path again (and opening the home), and so does `storage_conf`, the entry of the
/// storage.conf it read by name there.
pub fn can_change_config(
    home: &Home,
    config_dir: Option<&Tree>,
    storage_conf: Option<Entry>,
    uid: u32,
    gids: &[u32],
) -> Result<bool, String> {
    let error = |e: podsec_common::host::files::FileError| podsec_common::cli::error_chain(&e);
    let chain = match config_dir.filter(|dir| dir.is_direct()) {
        Some(dir) => vec![
            dir.parent_entry().map_err(error)?,
            Some(dir.own_entry().map_err(error)?),
            match storage_conf {
                Some(entry) => Some(entry),
                None => dir.entry(Path::new("storage.conf")).map_err(error)?,
            },
        ],
        None => match home.tree()? {
            Some(home) => home
                .walk(&Path::new(USER_CONFIG_DIR).join("storage.conf"))
                .map_err(error)?,
            // No home (any more): nothing of it walked, as for a missing ~/.config.
            None => Vec::new(),
        },
    };
    let (Some(Some(config)), Some(Some(containers))) = (chain.first(), chain.get(1)) else {
        // ~/.config or ~/.config/containers missing (or ~/.config not a directory): the user
        // can make them.
        return Ok(true);
    };
    if config.kind != Kind::Directory || containers.kind != Kind::Directory {
        return Ok(true);
    }
    if writable(containers, uid, gids) {
        return Ok(true);
    }
    let sticky_protected = config.mode & 0o1000 != 0 && containers.uid != uid && config.uid != uid;
    if writable(config, uid, gids) && !containers.immutable && !sticky_protected {
        return Ok(true);
    }
    match chain.get(2) {
        Some(Some(conf)) => Ok(conf.kind != Kind::File || writable(conf, uid, gids)),
        _ => Ok(false),
    }
}

fn facts_of(user: &UserConfig, admin_group: &str, errors: &mut Vec<String>) -> Facts {
    let name = user.name().to_string();
    let label = || serde_json::to_string(&name).expect("a string serialises");
    let policy = match &user.policy.value {
        Ok(policy) => Some(PolicyFacts::of(policy)),
        Err(e) => {
            errors.push(format!("user {}: {e}", label()));
            None
        }
    };
    let (default_lookaside, registries_d_readable) = match &user.registries_d.value {
        Ok(registries) => (
            registries
                .default_docker
                .as_ref()
                .and_then(|s| s.read_url())
                .map(str::to_string),
            true,
        ),
        Err(e) => {
            errors.push(format!("user {}: {e}", label()));
            (None, false)
        }
    };
    let candidate_101 = !user.is_root() && !user.in_podman && !user.in_podman_dev;
    let has_images = candidate_101
        && match user.store().and_then(|store| {
            store
                .map(|s| s.images().map_err(|e| podsec_common::cli::error_chain(&e)))
                .transpose()
        }) {
            Ok(images) => images.is_some_and(|images| !images.is_empty()),
            Err(e) => {
                errors.push(format!("user {}: {e}", label()));
                false
            }
        };
    let podman_only = !user.is_root() && user.in_podman && !user.in_podman_dev;
    let can_change_config = match (&user.home, podman_only && user.own_storage_conf) {
        (Some(home), true) => {
            match can_change_config(
                home,
                user.config_dir.as_ref(),
                user.storage_conf_entry,
                user.account.uid,
                &user.gids,
            ) {
                Ok(answer) => answer,
                Err(e) => {
                    errors.push(format!("user {}: {e}", label()));
                    false
                }
            }
        }
        _ => false,
    };
    Facts {
        user: name,
        root: user.is_root(),
        groups: user.groups.clone(),
        in_podman: user.in_podman,
        in_podman_dev: user.in_podman_dev,
        in_admin_group: user.groups.iter().any(|g| g == admin_group),
        has_images,
        policy,
        policy_file: user.policy.path.display().to_string(),
        default_lookaside,
        registries_d_readable,
        registries_d: user.registries_d.path.display().to_string(),
        storage_conf: user.own_storage_conf,
        can_change_config,
    }
}

/// The whole check over the accounts given; the facts of every user as the report's data
/// only when `with_data` (for `--json`: building and freeing them costs a quarter of a run over
/// ten thousand users).
pub fn collect(
    paths: &Paths,
    accounts: &[users::Account],
    groups: &GroupIndex,
    admin_group: &str,
    with_data: bool,
) -> Report {
    let (checked, errors) = inventory::map(
        paths,
        accounts,
        groups,
        |c| c.account.uid == 0 || c.in_podman || c.in_podman_dev || c.has_storage(),
        |user, errors| {
            let user_facts = facts_of(&user, admin_group, errors);
            let detail = format!(
                "checked {}: policy {}, registries.d {}, storage {}, groups {}",
                quoted(std::slice::from_ref(&user_facts.user)),
                user_facts.policy_file,
                user_facts.registries_d,
                user.storage.graphroot.display(),
                user_facts.groups.join(",")
            );
            (user_facts, detail)
        },
    );
    let (facts, details): (Vec<Facts>, Vec<String>) = checked.into_iter().unzip();
    Report {
        findings: findings(&facts),
        errors,
        details,
        data: if with_data {
            serde_json::json!({ "users": facts })
        } else {
            serde_json::Value::Null
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::tests::Fixture;
    use std::os::unix::fs::PermissionsExt;

    fn policy(json: &str) -> PolicyFacts {
        PolicyFacts::of(&Policy::from_json(json).unwrap())
    }

    #[test]
    fn policy_facts_follow_the_requirements_not_the_type_names() {
        let p = policy(
            r#"{"default":[{"type":"insecureAcceptAnything"}],"transports":{
            "docker":{"registry.local/demo":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k"}],
                      "quay.io":[{"type":"insecureAcceptAnything"}],
                      "blocked.example":[{"type":"reject"}],
                      "":[{"type":"insecureAcceptAnything"}]},
            "oci":{"":[{"type":"insecureAcceptAnything"}]},
            "dir":{"":[{"type":"reject"}]},
            "docker-daemon":{}}}"#,
        );
        assert!(!p.default_rejects);
        assert_eq!(p.signed_scopes, ["registry.local/demo"]);
        // a rejected scope accepts nothing: upstream listed it as "not signed"
        assert_eq!(p.unsigned_scopes, ["quay.io", ""]);
        // dir only rejects; docker-daemon has no scope (the default applies, finding 102)
        assert_eq!(p.other_transports, ["oci"]);
        assert!(p.signs_local_registry());
        let p = policy(
            r#"{"default":[{"type":"reject"}],"transports":{"docker":{"myregistry.local":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k"}]}}}"#,
        );
        assert!(p.default_rejects);
        assert!(!p.signs_local_registry(), "substring match");
        let p = policy(
            r#"{"default":[{"type":"reject"}],"transports":{"docker":{"registry.local":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k"},{"type":"reject"}]}}}"#,
        );
        assert!(
            !p.signs_local_registry(),
            "a rejected scope requires no signature, it refuses"
        );
    }

    fn clean(user: &str) -> Facts {
        Facts {
            user: user.into(),
            in_podman: true,
            policy: Some(policy(
                crate::inventory::tests::SYSTEM_POLICY
                    .replace("/demo", "")
                    .as_str(),
            )),
            default_lookaside: Some(SIGSTORE_URL.into()),
            registries_d_readable: true,
            storage_conf: true,
            ..Facts::default()
        }
    }

    fn weights(findings: &[Finding]) -> Vec<(u64, Vec<String>)> {
        findings
            .iter()
            .map(|f| (f.weight, f.users.clone()))
            .collect()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_clean_set_has_no_findings() {
        let mut root = clean("root");
        root.root = true;
        root.in_podman = false;
        assert!(findings(&[root, clean("alice")]).is_empty());
        // no podman user at all: no share finding and no division by zero
        let mut lonely = clean("root");
        lonely.root = true;
        lonely.in_podman = false;
        lonely.storage_conf = false;
        assert!(findings(&[lonely]).is_empty());
    }

    #[test]
    fn every_weight_with_hand_computed_shares() {
        let mut root = clean("root");
        root.root = true;
        root.in_podman = false;
        let mut carol = clean("carol"); // images, no podman group
        carol.in_podman = false;
        carol.has_images = true;
        let mut maker = clean("maker"); // podman_dev: excluded from 102 and the shares
        maker.in_podman_dev = true;
        maker.policy.as_mut().unwrap().default_rejects = false;
        maker.storage_conf = false;
        let mut erin = clean("erin"); // her own open policy and store, a writable directory
        erin.policy = Some(policy(
            r#"{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"":[{"type":"insecureAcceptAnything"}]},"oci":{"":[{"type":"insecureAcceptAnything"}]}}}"#,
        ));
        erin.default_lookaside = Some("file:///home/erin/sigstore".into());
        erin.can_change_config = true;
        let mut dave = clean("dave"); // administrator
        dave.in_admin_group = true;
        let mut bob = clean("bob"); // no storage.conf
        bob.storage_conf = false;
        bob.can_change_config = true; // does not count without storage.conf
        let mut frank = clean("frank"); // broken registries.d: an error, not a 106 finding
        frank.registries_d_readable = false;
        frank.default_lookaside = None;
        let mut nora = clean("nora"); // no default-docker at all
        nora.default_lookaside = None;
        let alice = clean("alice");
        let all = [root, carol, maker, erin, dave, bob, frank, nora, alice];
        let found = findings(&all);
        // podman-only users: erin, dave, bob, frank, nora, alice = 6; 90*1/6 = 15
        assert_eq!(
            weights(&found),
            [
                (101, names(&["carol"])),
                (102, names(&["erin"])),
                (103, names(&["erin"])),
                (104, names(&["erin"])),
                (105, names(&["erin"])),
                (106, names(&["erin", "nora"])),
                (107, names(&["dave"])),
                (15, names(&["bob"])),
                (15, names(&["erin"])),
            ]
        );
        assert_eq!(
            found.iter().map(|f| f.weight).sum::<u64>(),
            101 + 102 + 103 + 104 + 105 + 106 + 107 + 15 + 15
        );
        assert_eq!(
            found[0].message,
            r#"Users "carol" have images but are not in the podman group"#
        );
        assert_eq!(
            found[3].message,
            r#"Users "erin" have registries in the policy for which the presence of an electronic image signature is not checked ("erin": "")"#
        );
        assert_eq!(
            found[4].message,
            r#"Users "erin" have transports other than docker in the list of supported transports ("erin": "oci")"#
        );
        assert_eq!(
            found[6].message,
            r#"Users "dave" are members of the podman group and of the administrators' group"#
        );
        assert_eq!(
            found[7].message,
            r#"Users "bob" do not have config file .config/containers/storage.conf"#
        );
        // two of four: 90*2/4 = 45, integer division as upstream (90*1/3 = 30)
        let mut x = clean("x");
        x.storage_conf = false;
        let mut y = clean("y");
        y.storage_conf = false;
        assert_eq!(
            weights(&findings(&[x.clone(), y, clean("z"), clean("w")])),
            [(45, names(&["x", "y"]))]
        );
        assert_eq!(
            weights(&findings(&[x, clean("z"), clean("w")])),
            [(30, names(&["x"]))]
        );
    }

    #[test]
    fn changeable_configuration_is_seen_from_owner_mode_and_links() {
        let fixture = Fixture::new();
        let me = nix::unistd::geteuid().as_raw();
        let other = me + 4242;
        let account = fixture.account("u", other, other);
        let home = Home::unopened(&account.home);
        let home_tree = Tree::open(&account.home).unwrap().unwrap();
        // Each answer three times: from the walk of the path, from the directory as the
        // inventory opens it (its own entry when it was reached without a link), and with
        // storage.conf's entry as the inventory's read of it gives it.
        let check = |uid: u32| {
            let walked = can_change_config(&home, None, None, uid, &[uid]).unwrap();
            let dir = home_tree.subtree(Path::new(USER_CONFIG_DIR)).unwrap();
            let opened = can_change_config(&home, dir.as_ref(), None, uid, &[uid]).unwrap();
            let read = dir
                .as_ref()
                .and_then(|dir| crate::image_store::read_user_conf(dir).ok().flatten())
                .and_then(|(_, _, entry)| entry);
            let with_read = can_change_config(&home, dir.as_ref(), read, uid, &[uid]).unwrap();
            assert_eq!(walked, opened, "walked and opened disagree for uid {uid}");
            assert_eq!(walked, with_read, "walked and read disagree for uid {uid}");
            walked
        };
        // no ~/.config at all: the user can create it
        assert!(check(other));
        fixture.write(&account, ".config/containers/storage.conf", "[storage]\n");
        let containers = account.home.join(".config/containers");
        let mode = |path: &Path, m: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap()
        };
        mode(&containers, 0o755);
        mode(&containers.join("storage.conf"), 0o644);
        // all owned by the test's uid: for that uid everything is writable
        assert!(check(me));
        // another uid: ~/.config is not theirs and containers is not writable to them
        mode(&account.home.join(".config"), 0o755);
        assert!(!check(other));
        // world-writable storage.conf
        mode(&containers.join("storage.conf"), 0o666);
        assert!(check(other));
        mode(&containers.join("storage.conf"), 0o644);
        // ~/.config writable to them (o+w), containers not immutable: can be renamed away
        mode(&account.home.join(".config"), 0o777);
        assert!(check(other));
        // ... unless the sticky bit protects entries they do not own
        mode(&account.home.join(".config"), 0o1777);
        assert!(!check(other));
        mode(&account.home.join(".config"), 0o755);
        // a link in place of the directory
        std::fs::rename(&containers, account.home.join(".config/real")).unwrap();
        std::os::unix::fs::symlink("real", &containers).unwrap();
        assert!(check(other));
        let dir = home_tree
            .subtree(Path::new(USER_CONFIG_DIR))
            .unwrap()
            .unwrap();
        assert!(!dir.is_direct(), "reached through a link");
        std::fs::remove_file(&containers).unwrap();
        std::fs::rename(account.home.join(".config/real"), &containers).unwrap();
        let dir = home_tree
            .subtree(Path::new(USER_CONFIG_DIR))
            .unwrap()
            .unwrap();
        assert!(dir.is_direct());
        assert!(!check(other));
        // a link in place of storage.conf: never taken for the file it names (the read's entry
        // is not the link's), so the configuration counts as changeable
        std::fs::rename(
            containers.join("storage.conf"),
            containers.join("storage.real"),
        )
        .unwrap();
        std::os::unix::fs::symlink("storage.real", containers.join("storage.conf")).unwrap();
        assert!(check(other));
    }

    #[test]
    fn collect_reads_a_fixture_system() {
        let fixture = Fixture::new();
        let root = fixture.account("root", 0, 0);
        let bob = fixture.account("bob", 2001, 2001);
        let carol = fixture.account("carol", 2002, 2002);
        std::fs::create_dir_all(
            carol
                .home
                .join(".local/share/containers/storage/vfs-images"),
        )
        .unwrap();
        fixture.write(
            &carol,
            ".local/share/containers/storage/vfs-images/images.json",
            &serde_json::json!([{"id": "a".repeat(64), "names": ["localhost/x:1"]}]).to_string(),
        );
        let groups = GroupIndex::from_entries([("podman", 500, &["bob"][..])]);
        let report = collect(&fixture.paths, &[root, bob, carol], &groups, "sudo", true);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        // the fixture policy signs registry.local/demo and rejects by default
        let got: Vec<(u64, Vec<String>)> = weights(&report.findings);
        assert_eq!(got, [(101, names(&["carol"])), (90, names(&["bob"]))]);
        assert_eq!(report.data["users"][0]["user"], "root");
    }
}
