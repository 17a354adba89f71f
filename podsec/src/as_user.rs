//! Running a program as another account (gpg as an image maker): `setpriv` from util-linux
//! switches uid, gid and groups, the environment is that account's, no login shell runs.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use podsec_common::host::users::Account;

/// Runs `program args` as `account` with `stdin` fed in; returns the output.
pub fn run(
    account: &Account,
    program: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> std::io::Result<Output> {
    let mut child = Command::new("setpriv")
        .arg(format!("--reuid={}", account.uid))
        .arg(format!("--regid={}", account.gid))
        .args(["--init-groups", "--reset-env", "--"])
        .arg(program)
        .args(args)
        .env("HOME", &account.home)
        .env("USER", &account.name)
        .env("LOGNAME", &account.name)
        .current_dir(&account.home)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(bytes) = stdin {
        child.stdin.take().expect("stdin").write_all(bytes)?;
    }
    child.wait_with_output()
}
