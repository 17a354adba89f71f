//! Accounts and groups: lookups through NSS, exact membership, and changes through the
//! distribution's own `useradd`/`groupadd`/`usermod` (arguments passed as arguments).

use std::ffi::CString;
use std::path::PathBuf;
use std::process::Command;

use nix::unistd::{Gid, Group as NixGroup, User as NixUser};

#[derive(Debug, thiserror::Error, crate::i18n::Localize)]
pub enum AccountError {
    #[error(
        "invalid account name '{0}': use lower-case letters, digits, '_' and '-', starting with a letter or '_', at most 32 characters"
    )]
    InvalidName(String),
    #[error("cannot look up '{name}': {source}")]
    Lookup { name: String, source: nix::Error },
    #[error("no such user '{0}'")]
    NoSuchUser(String),
    #[error("no such group '{0}'")]
    NoSuchGroup(String),
    #[error("{program} failed for '{name}': {detail}")]
    Tool {
        program: &'static str,
        name: String,
        detail: String,
    },
}

/// An account as the system database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub shell: PathBuf,
}

/// Account and group names as shadow's tools accept them everywhere:
/// `[a-z_][a-z0-9_-]*[$]?`, at most 32 characters.
pub fn valid_account_name(name: &str) -> bool {
    let body = name.strip_suffix('$').unwrap_or(name);
    let mut chars = body.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    first_ok
        && name.len() <= 32
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

pub fn check_account_name(name: &str) -> Result<(), AccountError> {
    if valid_account_name(name) {
        Ok(())
    } else {
        Err(AccountError::InvalidName(name.to_string()))
    }
}

impl From<NixUser> for Account {
    fn from(user: NixUser) -> Account {
        Account {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home: user.dir,
            shell: user.shell,
        }
    }
}

pub fn find_user(name: &str) -> Result<Option<Account>, AccountError> {
    check_account_name(name)?;
    let user = NixUser::from_name(name).map_err(|source| AccountError::Lookup {
        name: name.into(),
        source,
    })?;
    Ok(user.map(Account::from))
}

pub fn find_user_by_uid(uid: u32) -> Result<Option<Account>, AccountError> {
    let user = NixUser::from_uid(nix::unistd::Uid::from_raw(uid)).map_err(|source| {
        AccountError::Lookup {
            name: uid.to_string(),
            source,
        }
    })?;
    Ok(user.map(Account::from))
}

pub fn user(name: &str) -> Result<Account, AccountError> {
    find_user(name)?.ok_or_else(|| AccountError::NoSuchUser(name.into()))
}

pub fn group_gid(name: &str) -> Result<Option<u32>, AccountError> {
    check_account_name(name)?;
    NixGroup::from_name(name)
        .map(|g| g.map(|g| g.gid.as_raw()))
        .map_err(|source| AccountError::Lookup {
            name: name.into(),
            source,
        })
}

/// The names of every group `user` belongs to (primary and supplementary).
pub fn groups_of(user: &Account) -> Result<Vec<String>, AccountError> {
    let c_name = CString::new(user.name.as_str())
        .map_err(|_| AccountError::InvalidName(user.name.clone()))?;
    let gids = nix::unistd::getgrouplist(&c_name, Gid::from_raw(user.gid)).map_err(|source| {
        AccountError::Lookup {
            name: user.name.clone(),
            source,
        }
    })?;
    let mut names = Vec::new();
    for gid in gids {
        if let Ok(Some(group)) = NixGroup::from_gid(gid)
            && !names.contains(&group.name)
        {
            names.push(group.name);
        }
    }
    Ok(names)
}

/// Exact membership: `podman_dev2` is not `podman_dev`, and `podman` is not `podman_dev`.
pub fn is_member(user: &Account, group: &str) -> Result<bool, AccountError> {
    Ok(groups_of(user)?.iter().any(|g| g == group))
}

/// Every account of the system database (`getpwent`, so NSS sources beyond /etc/passwd count),
/// in database order, each name once. Not thread-safe against other `getpwent` users (the C
/// library keeps one cursor); the commands call it from one thread.
pub fn all_accounts() -> Vec<Account> {
    let mut accounts: Vec<Account> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // SAFETY: setpwent/getpwent/endpwent are used from this thread only; each returned entry is
    // copied out before the next call overwrites it.
    unsafe {
        nix::libc::setpwent();
        loop {
            let entry = nix::libc::getpwent();
            if entry.is_null() {
                break;
            }
            let entry = &*entry;
            let text = |p: *const nix::libc::c_char| {
                if p.is_null() {
                    String::new()
                } else {
                    std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
                }
            };
            // Paths as the database has them, bytes and all (a home need not be UTF-8).
            let path = |p: *const nix::libc::c_char| {
                if p.is_null() {
                    PathBuf::new()
                } else {
                    use std::os::unix::ffi::OsStrExt;
                    PathBuf::from(std::ffi::OsStr::from_bytes(
                        std::ffi::CStr::from_ptr(p).to_bytes(),
                    ))
                }
            };
            let name = text(entry.pw_name);
            if name.is_empty() || !seen.insert(name.clone()) {
                continue;
            }
            accounts.push(Account {
                name,
                uid: entry.pw_uid,
                gid: entry.pw_gid,
                home: path(entry.pw_dir),
                shell: path(entry.pw_shell),
            });
        }
        nix::libc::endpwent();
    }
    accounts
}

/// The group database read once (`getgrent`): exact membership for many accounts without one
/// `getgrouplist` scan of the database per account.
#[derive(Debug, Clone, Default)]
pub struct GroupIndex {
    names: std::collections::HashMap<u32, String>,
    gids: std::collections::HashMap<String, u32>,
    /// Supplementary memberships: user name -> gids.
    members: std::collections::HashMap<String, Vec<u32>>,
}

impl GroupIndex {
    /// Reads the whole group database. Not thread-safe against other `getgrent` users.
    pub fn load() -> GroupIndex {
        let mut index = GroupIndex::default();
        // SAFETY: as in all_accounts: one thread, entries copied out before the next call.
        unsafe {
            nix::libc::setgrent();
            loop {
                let entry = nix::libc::getgrent();
                if entry.is_null() {
                    break;
                }
                let entry = &*entry;
                if entry.gr_name.is_null() {
                    continue;
                }
                let name = std::ffi::CStr::from_ptr(entry.gr_name)
                    .to_string_lossy()
                    .into_owned();
                let gid = entry.gr_gid;
                index.names.entry(gid).or_insert_with(|| name.clone());
                index.gids.entry(name).or_insert(gid);
                let mut member = entry.gr_mem;
                while !member.is_null() && !(*member).is_null() {
                    let user = std::ffi::CStr::from_ptr(*member)
                        .to_string_lossy()
                        .into_owned();
                    let gids = index.members.entry(user).or_default();
                    if !gids.contains(&gid) {
                        gids.push(gid);
                    }
                    member = member.add(1);
                }
            }
            nix::libc::endgrent();
        }
        index
    }

    /// An index from explicit entries `(group, gid, members)`, for tests.
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a str, u32, &'a [&'a str])>,
    ) -> GroupIndex {
        let mut index = GroupIndex::default();
        for (name, gid, members) in entries {
            index.names.entry(gid).or_insert_with(|| name.to_string());
            index.gids.entry(name.to_string()).or_insert(gid);
            for user in members {
                let gids = index.members.entry(user.to_string()).or_default();
                if !gids.contains(&gid) {
                    gids.push(gid);
                }
            }
        }
        index
    }

    pub fn gid(&self, group: &str) -> Option<u32> {
        self.gids.get(group).copied()
    }

    /// The primary gid and every supplementary gid of `account`, each once.
    pub fn gids_of(&self, account: &Account) -> Vec<u32> {
        let mut gids = vec![account.gid];
        for gid in self.members.get(&account.name).into_iter().flatten() {
            if !gids.contains(gid) {
                gids.push(*gid);
            }
        }
        gids
    }

    /// The names of those groups (a gid without a name is left out).
    pub fn groups_of(&self, account: &Account) -> Vec<String> {
        self.gids_of(account)
            .iter()
            .filter_map(|gid| self.names.get(gid).cloned())
            .collect()
    }

    /// Exact membership (primary or supplementary) by group name.
    pub fn is_member(&self, account: &Account, group: &str) -> bool {
        self.gid(group)
            .is_some_and(|gid| self.gids_of(account).contains(&gid))
    }
}

fn run_tool(program: &'static str, args: &[&str], name: &str) -> Result<(), AccountError> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| AccountError::Tool {
            program,
            name: name.into(),
            detail: e.to_string(),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(AccountError::Tool {
            program,
            name: name.into(),
            detail: String::from_utf8_lossy(&output.stderr)
                .trim()
                .replace('\n', " "),
        })
    }
}

/// Creates a (system) group unless it exists. Returns whether it was created.
pub fn ensure_group(name: &str, system: bool) -> Result<bool, AccountError> {
    if group_gid(name)?.is_some() {
        return Ok(false);
    }
    let mut args = Vec::new();
    if system {
        args.push("-r");
    }
    args.push(name);
    run_tool("groupadd", &args, name)?;
    super::failpoint::step("groupadd", std::path::Path::new(name));
    Ok(true)
}

/// What a new account gets.
#[derive(Debug, Clone, Default)]
pub struct NewAccount<'a> {
    pub primary_group: Option<&'a str>,
    pub groups: &'a [&'a str],
    pub home: Option<&'a str>,
    pub create_home: bool,
    pub system: bool,
    pub comment: Option<&'a str>,
    pub shell: Option<&'a str>,
}

/// Creates an account unless it exists; returns the account and whether it was created.
pub fn ensure_user(name: &str, spec: &NewAccount<'_>) -> Result<(Account, bool), AccountError> {
    if let Some(existing) = find_user(name)? {
        return Ok((existing, false));
    }
    let groups = spec.groups.join(",");
    let mut args: Vec<&str> = Vec::new();
    if spec.system {
        args.push("-r");
    }
    args.push(if spec.create_home { "-m" } else { "-M" });
    if let Some(group) = spec.primary_group {
        args.extend(["-g", group]);
    } else {
        args.push("-U");
    }
    if !groups.is_empty() {
        args.extend(["-G", &groups]);
    }
    if let Some(home) = spec.home {
        args.extend(["-d", home]);
    }
    if let Some(comment) = spec.comment {
        args.extend(["-c", comment]);
    }
    if let Some(shell) = spec.shell {
        args.extend(["-s", shell]);
    }
    args.push("--");
    args.push(name);
    run_tool("useradd", &args, name)?;
    super::failpoint::step("useradd", std::path::Path::new(name));
    Ok((user(name)?, true))
}

/// Why `chpasswd` could not take `password` as it is, if it could not (checked before any
/// account is made).
pub fn password_problem(password: &str) -> Option<&'static str> {
    if password.is_empty() {
        Some("the password is empty")
    } else if password.contains(':') || password.chars().any(char::is_control) {
        Some("the password contains ':' or a control character")
    } else {
        None
    }
}

/// The password on the first line of `input` (at most 64 KiB read), checked by
/// [`password_problem`]; for `--password-stdin`, read before any account is made.
pub fn password_from(input: impl std::io::Read) -> Result<String, String> {
    use std::io::Read;
    let mut text = String::new();
    input
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    let line = text.lines().next().unwrap_or_default().to_string();
    match password_problem(&line) {
        Some(problem) => Err(problem.to_string()),
        None => Ok(line),
    }
}

/// Sets an account's password through `chpasswd` (the password on its standard input, never
/// on a command line).
pub fn set_password(name: &str, password: &str) -> Result<(), AccountError> {
    let failed = |detail: String| AccountError::Tool {
        program: "chpasswd",
        name: name.into(),
        detail,
    };
    if let Some(problem) = password_problem(password) {
        return Err(failed(problem.into()));
    }
    let mut child = Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(format!("{name}:{password}\n").as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    super::failpoint::step("chpasswd", std::path::Path::new(name));
    Ok(())
}

/// Adds supplementary groups to an existing account (never removes any). Groups it is in
/// already, as its primary group too, are left alone: a re-run after a kill between `useradd -g
/// podman` and the rest does not make podman a supplementary group as well (fault injection
/// found that difference).
pub fn add_to_groups(name: &str, groups: &[&str]) -> Result<(), AccountError> {
    let account = user(name)?;
    let index = GroupIndex::load();
    let groups: Vec<&str> = groups
        .iter()
        .copied()
        .filter(|group| !index.is_member(&account, group))
        .collect();
    if groups.is_empty() {
        return Ok(());
    }
    let list = groups.join(",");
    run_tool("usermod", &["-a", "-G", &list, "--", name], name)?;
    super::failpoint::step("usermod", std::path::Path::new(name));
    Ok(())
}

/// Gives `name` the subordinate uids and gids `start..start+count` (`usermod --add-subuids
/// --add-subgids`), which rootless namespaces map.
pub fn add_subordinate_ids(name: &str, start: u64, count: u64) -> Result<(), AccountError> {
    let range = format!("{start}-{}", start + count - 1);
    run_tool(
        "usermod",
        &["--add-subuids", &range, "--add-subgids", &range, "--", name],
        name,
    )?;
    super::failpoint::step("usermod", std::path::Path::new(name));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_follow_shadow_rules() {
        for good in ["imagemaker", "u7s-admin", "_x", "a1_b-c", "machine$"] {
            assert!(valid_account_name(good), "{good}");
        }
        for bad in [
            "",
            "Root",
            "1abc",
            "-x",
            "a b",
            "a;b",
            "a/b",
            "../x",
            &"a".repeat(33),
        ] {
            assert!(!valid_account_name(bad), "{bad}");
        }
    }

    #[test]
    fn group_index_matches_exactly_and_counts_the_primary_group() {
        let index = GroupIndex::from_entries([
            ("podman", 100, &["alice"][..]),
            ("podman_dev", 101, &["bob"][..]),
            ("podman_dev2", 102, &["carol"][..]),
            ("users", 1000, &[][..]),
        ]);
        let account = |name: &str, gid| Account {
            name: name.into(),
            uid: 2000,
            gid,
            home: "/home/x".into(),
            shell: "/bin/sh".into(),
        };
        let alice = account("alice", 1000);
        assert_eq!(index.groups_of(&alice), ["users", "podman"]);
        assert!(index.is_member(&alice, "podman"));
        assert!(!index.is_member(&alice, "podman_dev"));
        let carol = account("carol", 1000);
        assert!(!index.is_member(&carol, "podman_dev"), "substring match");
        assert!(!index.is_member(&carol, "podman"), "substring match");
        let dave = account("dave", 100);
        assert!(index.is_member(&dave, "podman"), "primary group");
        assert!(!index.is_member(&dave, "no-such-group"));
    }

    #[test]
    fn the_databases_enumerate_root() {
        let accounts = all_accounts();
        let root = accounts.iter().find(|a| a.name == "root").expect("root");
        assert_eq!(root.uid, 0);
        let index = GroupIndex::load();
        assert!(index.is_member(root, "root"));
        let mut ours = index.groups_of(root);
        let mut libc = groups_of(root).unwrap();
        ours.sort();
        libc.sort();
        assert_eq!(ours, libc);
    }

    #[test]
    fn root_is_found_and_is_in_group_root_exactly() {
        let root = user("root").unwrap();
        assert_eq!(root.uid, 0);
        assert!(is_member(&root, "root").unwrap());
        assert!(!is_member(&root, "roo").unwrap());
        assert!(find_user("no-such-user-podsec").unwrap().is_none());
    }
}
