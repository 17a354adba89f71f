//! Running a program as another account (gpg as an image maker): `setpriv` from util-linux
//! switches uid, gid and groups, the environment is that account's, no login shell runs.

use std::io::Write;
use std::process::{Command, ExitStatus, Output, Stdio};

use super::users::Account;

fn command(account: &Account, program: &str, args: &[&str]) -> Command {
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--reuid={}", account.uid))
        .arg(format!("--regid={}", account.gid))
        .args(["--init-groups", "--reset-env", "--"])
        .arg(program)
        .args(args)
        .env("HOME", &account.home)
        .env("USER", &account.name)
        .env("LOGNAME", &account.name)
        .current_dir(&account.home);
    command
}

/// Runs `program args` as `account` with `stdin` fed in; returns the output.
pub fn run(
    account: &Account,
    program: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> std::io::Result<Output> {
    let mut child = command(account, program, args)
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

/// Runs `program args` as `account` on the caller's terminal (gpg asks its questions there and
/// pinentry finds the terminal through GPG_TTY).
pub fn interactive(account: &Account, program: &str, args: &[&str]) -> std::io::Result<ExitStatus> {
    let mut command = command(account, program, args);
    if let Ok(tty) = std::fs::read_link("/proc/self/fd/0") {
        command.env("GPG_TTY", tty);
    }
    if let Some(term) = std::env::var_os("TERM") {
        command.env("TERM", term);
    }
    command.status()
}
