//! The accounts the plugins check and the container configuration that applies to each, found
//! as podman itself finds it and read as root without following anything a user planted:
//!
//! - accounts from the account database (NSS), groups from the group database, membership exact;
//! - policy.json: `~/.config/containers/policy.json` when it exists, else the system file;
//! - registries.d: `~/.config/containers/registries.d` when it exists, else the system
//!   directory; every `*.yaml` merged (upstream read only default.yaml);
//! - container storage: see [`crate::image_store`].
//!
//! Everything below a home directory is read through [`Tree`] (no link out of the home, regular
//! files only, bounded sizes). The system files are read once and shared.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use podsec_common::cli::error_chain;
use podsec_common::host::beneath::{Entry, Tree};
use podsec_common::host::files::FileError;
use podsec_common::host::users::{Account, GroupIndex};
use podsec_common::policy::Policy;
use podsec_common::registries_d::RegistriesD;

use crate::image_store::{self, ImageStore, Location, SystemStorage};

pub use podsec_common::trust_chain::{GROUP_PODMAN, GROUP_PODMAN_DEV};
/// A user's own configuration directory, below the home.
pub const USER_CONFIG_DIR: &str = ".config/containers";

const MAX_POLICY: u64 = 4 << 20;
const MAX_YAML: u64 = 1 << 20;

/// The system paths (tests point them elsewhere).
#[derive(Debug, Clone)]
pub struct Paths {
    pub policy: PathBuf,
    pub registries_d: PathBuf,
    pub storage_conf: Vec<PathBuf>,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            policy: "/etc/containers/policy.json".into(),
            registries_d: "/etc/containers/registries.d".into(),
            storage_conf: vec![
                "/etc/containers/storage.conf".into(),
                "/usr/share/containers/storage.conf".into(),
            ],
        }
    }
}

/// A configuration file or directory in force for a user (the user's own or the system's: its
/// path says which).
#[derive(Debug, Clone)]
pub struct Sourced<T> {
    pub path: PathBuf,
    pub value: Result<Arc<T>, String>,
}

/// One account and its container configuration.
#[derive(Debug)]
pub struct UserConfig {
    pub account: Account,
    pub groups: Vec<String>,
    pub gids: Vec<u32>,
    pub in_podman: bool,
    pub in_podman_dev: bool,
    /// The home directory (None when the account's home is not an absolute path below `/`).
    pub home: Option<Home>,
    /// `~/.config/containers`, open (None when it does not exist).
    pub config_dir: Option<Tree>,
    pub policy: Sourced<Policy>,
    pub registries_d: Sourced<RegistriesD>,
    pub storage: Location,
    /// Whether the user has their own `~/.config/containers/storage.conf`.
    pub own_storage_conf: bool,
    /// Its entry, when it was read by its own name (no link): its `lstat`, for the check of
    /// who can change it.
    pub storage_conf_entry: Option<Entry>,
}

impl UserConfig {
    pub fn is_root(&self) -> bool {
        self.account.uid == 0
    }

    pub fn name(&self) -> &str {
        &self.account.name
    }

    /// The storage, opened now (None when the graphroot does not exist). Not opened for every
    /// account up front: most checks do not need it.
    pub fn store(&self) -> Result<Option<ImageStore>, String> {
        let home = self.home.as_ref().map(Home::tree).transpose()?.flatten();
        ImageStore::open(&self.storage, home).map_err(|e| error_chain(&e))
    }
}

/// A home directory, opened when first needed: check-policy reaches most homes only through
/// `~/.config/containers`, opened from the directory that holds the homes.
#[derive(Debug)]
pub struct Home {
    path: PathBuf,
    tree: std::cell::OnceCell<Result<Option<Tree>, String>>,
}

impl Home {
    pub(crate) fn opened(path: &Path, tree: Option<Tree>) -> Home {
        Home {
            path: path.to_path_buf(),
            tree: std::cell::OnceCell::from(Ok(tree)),
        }
    }

    pub(crate) fn unopened(path: &Path) -> Home {
        Home {
            path: path.to_path_buf(),
            tree: std::cell::OnceCell::new(),
        }
    }

    /// The directory, open (None when it does not exist).
    pub fn tree(&self) -> Result<Option<&Tree>, String> {
        self.tree
            .get_or_init(|| Tree::open(&self.path).map_err(|e| error_chain(&e)))
            .as_ref()
            .map(Option::as_ref)
            .map_err(Clone::clone)
    }
}

/// What is known about an account before deciding whether to check it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub account: &'a Account,
    pub in_podman: bool,
    pub in_podman_dev: bool,
    storage: &'a Location,
    home: Option<&'a Home>,
}

impl Candidate<'_> {
    /// Whether the account has container storage (looked at only when asked). Storage that
    /// cannot be opened counts as present, so that the error is reported, not skipped.
    pub fn has_storage(&self) -> bool {
        match self.home.map(Home::tree).transpose() {
            Ok(home) => !matches!(ImageStore::open(self.storage, home.flatten()), Ok(None)),
            Err(_) => true,
        }
    }
}

/// The system configuration, read once.
struct System {
    policy: Sourced<Policy>,
    registries_d: Sourced<RegistriesD>,
    storage: Result<SystemStorage, String>,
}

impl System {
    fn load(paths: &Paths) -> System {
        let policy = std::fs::read_to_string(&paths.policy)
            .map_err(|e| format!("{}: {e}", paths.policy.display()))
            .and_then(|text| {
                Policy::from_json(&text)
                    .map_err(|e| format!("{}: {}", paths.policy.display(), error_chain(&e)))
            });
        let registries_d = RegistriesD::load_dir(&paths.registries_d).map_err(|e| error_chain(&e));
        System {
            policy: Sourced {
                path: paths.policy.clone(),
                value: policy.map(Arc::new),
            },
            registries_d: Sourced {
                path: paths.registries_d.clone(),
                value: registries_d.map(Arc::new),
            },
            storage: SystemStorage::load(&paths.storage_conf).map_err(|e| error_chain(&e)),
        }
    }
}

/// The directories that hold several homes (`/home`), open once: each home is opened from
/// there instead of by its whole path (ten thousand homes, ten thousand walks from `/`).
struct HomeParents(HashMap<PathBuf, Tree>);

impl HomeParents {
    fn of(accounts: &[&Account]) -> HomeParents {
        let mut homes: HashMap<&Path, usize> = HashMap::new();
        for account in accounts {
            if let Some(parent) = account.home.parent() {
                *homes.entry(parent).or_default() += 1;
            }
        }
        HomeParents(
            homes
                .into_iter()
                .filter(|(_, count)| *count > 1)
                .filter_map(|(parent, _)| {
                    // One that cannot be opened is left to each home's own open, which words
                    // the error.
                    Tree::open(parent)
                        .ok()
                        .flatten()
                        .map(|tree| (parent.to_path_buf(), tree))
                })
                .collect(),
        )
    }

    /// The home directory `path`, as [`Tree::open`] opens it.
    fn open(&self, path: &Path) -> Result<Option<Tree>, FileError> {
        match path.parent().and_then(|parent| self.0.get(parent)) {
            Some(parent) => Tree::open_in(parent, path),
            None => Tree::open(path),
        }
    }

    /// `relative` below the home `path`, opened from its parent without opening the home (see
    /// [`Tree::subtree_in`]); None when that way does not lead there.
    fn subtree(&self, path: &Path, relative: &Path) -> Option<Tree> {
        let parent = self.0.get(path.parent()?)?;
        Tree::subtree_in(parent, path, relative)
    }
}

/// The system configuration and the accounts in the order they are checked: root (uid 0,
/// the first such account; other uid-0 names such as toor are the same user with the same
/// files) first, the others by name.
struct Plan<'a> {
    system: System,
    system_storage: SystemStorage,
    ordered: Vec<&'a Account>,
    home_parents: HomeParents,
}

impl<'a> Plan<'a> {
    fn new(paths: &Paths, accounts: &'a [Account], errors: &mut Vec<String>) -> Plan<'a> {
        let system = System::load(paths);
        let system_storage = match &system.storage {
            Ok(storage) => storage.clone(),
            Err(e) => {
                errors.push(e.clone());
                SystemStorage::default()
            }
        };
        let mut ordered: Vec<&Account> = accounts.iter().collect();
        ordered.sort_by(|a, b| (a.uid != 0, &a.name).cmp(&(b.uid != 0, &b.name)));
        let mut root_seen = false;
        ordered.retain(|account| account.uid != 0 || !std::mem::replace(&mut root_seen, true));
        Plan {
            system,
            system_storage,
            home_parents: HomeParents::of(&ordered),
            ordered,
        }
    }

    /// The configuration of one account if `want` selects it; what could not be read goes to
    /// `errors`.
    fn read(
        &self,
        account: &Account,
        groups: &GroupIndex,
        want: &impl Fn(&Candidate) -> bool,
        errors: &mut Vec<String>,
    ) -> Option<UserConfig> {
        match user_config(account, groups, self, want) {
            Ok(user) => user,
            Err(e) => {
                errors.push(format!("user {}: {e}", quote(&account.name)));
                None
            }
        }
    }
}

/// Reads the configuration of every account `want` selects and hands each to `visit`, one at
/// a time (its open directories are closed before the next account is read, so thousands of
/// users do not need thousands of descriptors). Root comes first, the others by name. Returns
/// what could not be read; `visit` may add to it.
pub fn visit(
    paths: &Paths,
    accounts: &[Account],
    groups: &GroupIndex,
    want: impl Fn(&Candidate) -> bool,
    mut visit: impl FnMut(UserConfig, &mut Vec<String>),
) -> Vec<String> {
    let mut errors = Vec::new();
    let plan = Plan::new(paths, accounts, &mut errors);
    for account in &plan.ordered {
        if let Some(user) = plan.read(account, groups, &want, &mut errors) {
            visit(user, &mut errors);
        }
    }
    errors
}

/// Accounts per thread below which [`map`] does not start another: a thread costs about as
/// much as reading a few dozen accounts.
const ACCOUNTS_PER_THREAD: usize = 256;

/// Like [`visit`], for checks that need nothing but the account: `check` runs on several
/// threads (reading thousands of homes is system calls, which run on every core), each
/// account's result and errors come back in the order [`visit`] gives them, so the output does
/// not depend on the number of threads.
pub fn map<T: Send>(
    paths: &Paths,
    accounts: &[Account],
    groups: &GroupIndex,
    want: impl Fn(&Candidate) -> bool + Sync,
    check: impl Fn(UserConfig, &mut Vec<String>) -> T + Sync,
) -> (Vec<T>, Vec<String>) {
    let mut errors = Vec::new();
    let plan = Plan::new(paths, accounts, &mut errors);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores
        .min(plan.ordered.len().div_ceil(ACCOUNTS_PER_THREAD))
        .max(1);
    let chunk = plan.ordered.len().div_ceil(threads).max(1);
    let run = |part: &[&Account]| {
        let mut results = Vec::with_capacity(part.len());
        let mut errors = Vec::new();
        for account in part {
            if let Some(user) = plan.read(account, groups, &want, &mut errors) {
                results.push(check(user, &mut errors));
            }
        }
        (results, errors)
    };
    let parts: Vec<(Vec<T>, Vec<String>)> = if threads == 1 {
        vec![run(&plan.ordered)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = plan
                .ordered
                .chunks(chunk)
                .map(|part| scope.spawn(|| run(part)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|e| std::panic::resume_unwind(e))
                })
                .collect()
        })
    };
    let mut results = Vec::with_capacity(parts.iter().map(|(part, _)| part.len()).sum());
    for (part, part_errors) in parts {
        results.extend(part);
        errors.extend(part_errors);
    }
    (results, errors)
}

fn quote(name: &str) -> String {
    serde_json::to_string(name).expect("a string serialises")
}

fn user_config(
    account: &Account,
    groups: &GroupIndex,
    plan: &Plan,
    want: &impl Fn(&Candidate) -> bool,
) -> Result<Option<UserConfig>, String> {
    let (system, system_storage) = (&plan.system, &plan.system_storage);
    let in_podman = groups.is_member(account, GROUP_PODMAN);
    let in_podman_dev = groups.is_member(account, GROUP_PODMAN_DEV);
    let (home, config_dir) = if account.home.is_absolute() && account.home != Path::new("/") {
        let relative = Path::new(USER_CONFIG_DIR);
        match plan.home_parents.subtree(&account.home, relative) {
            Some(config_dir) => (Some(Home::unopened(&account.home)), Some(config_dir)),
            None => {
                let tree = plan
                    .home_parents
                    .open(&account.home)
                    .map_err(|e| error_chain(&e))?;
                let config_dir = match &tree {
                    Some(tree) => tree.subtree(relative).map_err(|e| error_chain(&e))?,
                    None => None,
                };
                (Some(Home::opened(&account.home, tree)), config_dir)
            }
        }
    } else {
        (None, None)
    };
    let mut storage_conf_entry = None;
    let (storage, own_storage_conf) = if account.uid == 0 {
        (image_store::root_location(system_storage), false)
    } else {
        let own = match &config_dir {
            Some(dir) => image_store::read_user_conf(dir).map_err(|e| error_chain(&e))?,
            None => None,
        };
        let (own, entry) = match own {
            Some((path, conf, entry)) => (Some((path, conf)), entry),
            None => (None, None),
        };
        storage_conf_entry = entry;
        let present = own.is_some();
        (
            image_store::user_location(account, own, system_storage),
            present,
        )
    };
    let candidate = Candidate {
        account,
        in_podman,
        in_podman_dev,
        storage: &storage,
        home: home.as_ref(),
    };
    if !want(&candidate) {
        return Ok(None);
    }
    let policy = config_dir
        .as_ref()
        .and_then(own_policy)
        .unwrap_or_else(|| system.policy.clone());
    let registries_d = config_dir
        .as_ref()
        .and_then(own_registries_d)
        .unwrap_or_else(|| system.registries_d.clone());
    Ok(Some(UserConfig {
        account: account.clone(),
        groups: groups.groups_of(account),
        gids: groups.gids_of(account),
        in_podman,
        in_podman_dev,
        home,
        config_dir,
        policy,
        registries_d,
        storage,
        own_storage_conf,
        storage_conf_entry,
    }))
}

/// Whether `name` may exist in `dir`: a `statx` that finds nothing is the common answer for
/// a user's own policy.json and registries.d, and cheaper than an open that finds nothing. An
/// error is left to the open that follows, which words it.
fn may_exist(dir: &Tree, name: &Path) -> bool {
    !matches!(dir.entry(name), Ok(None))
}

fn own_policy(dir: &Tree) -> Option<Sourced<Policy>> {
    let relative = Path::new("policy.json");
    if !may_exist(dir, relative) {
        return None;
    }
    // A policy that cannot be read is the user's own all the same: reported for this user,
    // who is still checked for everything else.
    let read = dir.read_string(relative, MAX_POLICY).transpose()?;
    let path = dir.path().join(relative);
    let value = match read {
        Ok(text) => Policy::from_json(&text)
            .map(Arc::new)
            .map_err(|e| format!("{}: {}", path.display(), error_chain(&e))),
        Err(e) => Err(error_chain(&e)),
    };
    Some(Sourced { path, value })
}

fn own_registries_d(dir: &Tree) -> Option<Sourced<RegistriesD>> {
    let relative = Path::new("registries.d");
    if !may_exist(dir, relative) {
        return None;
    }
    let sub = match dir.subtree(relative) {
        Ok(Some(sub)) => sub,
        Ok(None) => return None,
        Err(e) => {
            return Some(Sourced {
                path: dir.path().join(relative),
                value: Err(error_chain(&e)),
            });
        }
    };
    let read = || -> Result<RegistriesD, String> {
        let mut files = Vec::new();
        for name in sub.list().map_err(|e| error_chain(&e))? {
            if Path::new(&name).extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            if let Some(text) = sub
                .read_string(Path::new(&name), MAX_YAML)
                .map_err(|e| error_chain(&e))?
            {
                files.push((sub.path().join(&name), text));
            }
        }
        RegistriesD::merge(files).map_err(|e| error_chain(&e))
    };
    Some(Sourced {
        path: sub.path().to_path_buf(),
        value: read().map(Arc::new),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// Every selected user, kept (tests only: the descriptors stay open).
    pub fn collect(
        paths: &Paths,
        accounts: &[Account],
        groups: &GroupIndex,
        want: impl Fn(&Candidate) -> bool,
    ) -> (Vec<UserConfig>, Vec<String>) {
        let mut users = Vec::new();
        let errors = visit(paths, accounts, groups, want, |user, _| users.push(user));
        (users, errors)
    }

    /// A throwaway system: `etc/containers` and homes below one directory.
    pub struct Fixture {
        pub dir: tempfile::TempDir,
        pub paths: Paths,
    }

    pub const SYSTEM_POLICY: &str = r#"{"default":[{"type":"reject"}],"transports":{"docker":{
        "registry.local/demo":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/var/sigstore/keys/maker.pgp"}]}}}"#;
    pub const SYSTEM_REGISTRIES_D: &str = "default-docker:\n  lookaside: http://sigstore.local:81/sigstore/\n  sigstore: http://sigstore.local:81/sigstore/\n";

    impl Fixture {
        pub fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let etc = dir.path().join("etc/containers");
            std::fs::create_dir_all(etc.join("registries.d")).unwrap();
            std::fs::write(etc.join("policy.json"), SYSTEM_POLICY).unwrap();
            std::fs::write(etc.join("registries.d/default.yaml"), SYSTEM_REGISTRIES_D).unwrap();
            let paths = Paths {
                policy: etc.join("policy.json"),
                registries_d: etc.join("registries.d"),
                storage_conf: vec![etc.join("storage.conf")],
            };
            Fixture { dir, paths }
        }

        pub fn account(&self, name: &str, uid: u32, gid: u32) -> Account {
            let home = self.dir.path().join("home").join(name);
            std::fs::create_dir_all(&home).unwrap();
            Account {
                name: name.into(),
                uid,
                gid,
                home,
                shell: "/bin/sh".into(),
            }
        }

        pub fn write(&self, account: &Account, relative: &str, text: &str) {
            let path = account.home.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    #[test]
    fn map_on_several_threads_gives_what_visit_gives_in_the_same_order() {
        let fixture = Fixture::new();
        // Enough accounts for several threads; every seventh has a policy that cannot be
        // read (an error of its own, which must stay in the user's place).
        let mut accounts = vec![fixture.account("root", 0, 0)];
        for index in 0..3 * ACCOUNTS_PER_THREAD {
            let account = fixture.account(&format!("u{index:04}"), 10_000 + index as u32, 500);
            if index % 7 == 0 {
                fixture.write(&account, ".config/containers/policy.json", "{not json");
            }
            accounts.push(account);
        }
        accounts.reverse();
        let groups = GroupIndex::from_entries([("podman", 500, &[][..])]);
        let want = |c: &Candidate| c.account.uid == 0 || c.in_podman;
        let mut sequential = Vec::new();
        let visit_errors = visit(&fixture.paths, &accounts, &groups, want, |user, errors| {
            if let Err(e) = &user.policy.value {
                errors.push(e.clone());
            }
            sequential.push(user.name().to_string());
        });
        let (parallel, map_errors) =
            map(&fixture.paths, &accounts, &groups, want, |user, errors| {
                if let Err(e) = &user.policy.value {
                    errors.push(e.clone());
                }
                user.name().to_string()
            });
        assert_eq!(sequential.len(), accounts.len());
        assert_eq!(sequential.first().map(String::as_str), Some("root"));
        assert_eq!(parallel, sequential);
        assert_eq!(visit_errors.len(), (3 * ACCOUNTS_PER_THREAD).div_ceil(7));
        assert_eq!(map_errors, visit_errors);
    }

    #[test]
    fn own_configuration_wins_and_links_out_of_the_home_are_errors() {
        let fixture = Fixture::new();
        let groups = GroupIndex::from_entries([("podman", 500, &["alice", "bob"][..])]);
        let alice = fixture.account("alice", 1001, 1001);
        let bob = fixture.account("bob", 1002, 1002);
        let carol = fixture.account("carol", 1003, 1003);
        fixture.write(
            &alice,
            ".config/containers/policy.json",
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        );
        fixture.write(
            &alice,
            ".config/containers/registries.d/a.yaml",
            "docker:\n  quay.io:\n    lookaside: http://q/\n",
        );
        fixture.write(
            &alice,
            ".config/containers/registries.d/b.yaml",
            "default-docker:\n  lookaside: http://d/\n",
        );
        fixture.write(&alice, ".config/containers/registries.d/ignored.yml", "{{{");
        fixture.write(
            &alice,
            ".config/containers/storage.conf",
            "[storage]\ndriver = \"vfs\"\n",
        );
        std::fs::create_dir_all(alice.home.join(".local/share/containers/storage")).unwrap();
        // bob links his policy to a file outside his home
        std::fs::create_dir_all(bob.home.join(".config/containers")).unwrap();
        symlink(
            &fixture.paths.policy,
            bob.home.join(".config/containers/policy.json"),
        )
        .unwrap();
        let accounts = [carol.clone(), bob.clone(), alice.clone()];
        let (users, errors) = collect(&fixture.paths, &accounts, &groups, |c| {
            c.in_podman || c.has_storage()
        });
        let names: Vec<&str> = users.iter().map(|u| u.name()).collect();
        assert_eq!(
            names,
            ["alice", "bob"],
            "carol has neither podman nor storage"
        );
        assert!(errors.is_empty(), "{:?}", errors);
        let bob = &users[1];
        assert!(bob.policy.path.starts_with(&bob.account.home));
        let err = bob.policy.value.as_ref().unwrap_err();
        assert!(err.contains("refusing to follow"), "{err}");
        let alice = &users[0];
        assert!(alice.policy.path.starts_with(&alice.account.home));
        assert_eq!(
            alice.policy.value.as_ref().unwrap().default[0].kind(),
            Some("insecureAcceptAnything")
        );
        let registries = alice.registries_d.value.as_ref().unwrap();
        assert!(registries.docker.contains_key("quay.io"));
        assert_eq!(
            registries.default_docker.as_ref().unwrap().read_url(),
            Some("http://d/")
        );
        assert!(alice.own_storage_conf);
        assert_eq!(alice.storage.driver.as_deref(), Some("vfs"));
        assert!(alice.store().unwrap().is_some());
        assert!(alice.in_podman && !alice.in_podman_dev);
    }

    #[test]
    fn system_configuration_applies_otherwise_and_root_comes_first() {
        let fixture = Fixture::new();
        let groups = GroupIndex::from_entries([("podman", 500, &["zed"][..])]);
        let zed = fixture.account("zed", 1005, 1005);
        let root = fixture.account("root", 0, 0);
        let toor = Account {
            name: "toor".into(),
            ..root.clone()
        };
        let (users, errors) = collect(&fixture.paths, &[zed, toor, root], &groups, |_| true);
        let names: Vec<&str> = users.iter().map(|u| u.name()).collect();
        assert_eq!(names, ["root", "zed"]);
        let zed = &users[1];
        assert!(!zed.own_storage_conf);
        assert_eq!(zed.registries_d.path, fixture.paths.registries_d);
        assert_eq!(zed.policy.path, fixture.paths.policy);
        assert!(zed.store().unwrap().is_none());
        assert!(errors.is_empty(), "{:?}", errors);
    }
}
