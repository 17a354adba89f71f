//! The external programs a command runs, found before it changes anything, so that a missing
//! tool is named in one line instead of surfacing as a bare "No such file or directory" half-way.

use std::path::PathBuf;

/// Where programs are looked up when PATH is unset (systemd units and cron set their own).
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// `program` in PATH (or [`DEFAULT_PATH`]): the first regular, executable file of that name.
pub fn find_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_executables_only() {
        assert!(find_program("sh").is_some_and(|p| p.is_absolute()));
        assert_eq!(find_program("no-such-program-podsec"), None);
    }
}
