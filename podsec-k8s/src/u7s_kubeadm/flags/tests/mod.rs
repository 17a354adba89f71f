//! Tests through `parse`, the parser's entry point, with the helpers they share.
//!
//! `dispositions`: the disposition of every flag of the table (spec §3.5/§3.12: upstream's
//! u7s_flags list, with the klog flags), checked by one table-driven test against a list
//! written independently of FLAGS: honoured (the typed value the configuration is built from),
//! passed to the native kubeadm (its argument), or refused (the error naming it), under each
//! subcommand it belongs to and refused by the other; upstream's upgrade and reset flags go
//! verbatim to their own subcommands. `values`: the `flag_*` tests, the values a flag accepts
//! and refuses. `parser`: the command line itself. The configuration side of the honoured
//! flags is tested in kubeadm_config and plan.

use std::fmt;
use std::net::Ipv4Addr;

use super::*;
use crate::u7s_kubeadm::versions::VersionRequest;

mod dispositions;
mod parser;
mod values;

const HASH: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const TOKEN: &str = "abcdef.0123456789abcdef";
const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn args(s: &[&str]) -> Vec<String> {
    s.iter().map(|a| a.to_string()).collect()
}

fn init(extra: &[&str]) -> Result<InitFlags, FlagError> {
    let mut a = vec!["init"];
    a.extend(extra);
    match parse(&args(&a))? {
        Invocation::Init(f) => Ok(*f),
        other => panic!("not init: {other:?}"),
    }
}

fn join(extra: &[&str]) -> Result<JoinFlags, FlagError> {
    let mut a = vec!["join", "192.0.2.10:6443", "--token", TOKEN];
    if !extra.contains(&"--discovery-token-unsafe-skip-ca-verification") {
        a.extend(["--discovery-token-ca-cert-hash", HASH]);
    }
    a.extend(extra);
    match parse(&args(&a))? {
        Invocation::Join(f) => Ok(*f),
        other => panic!("not join: {other:?}"),
    }
}

fn rejected(result: Result<impl fmt::Debug, FlagError>, flag: &str) -> String {
    let err = result.expect_err("must be rejected");
    let text = err.to_string();
    assert!(text.contains(&format!("--{flag}")), "{text}");
    text
}

fn native(argv: &[&str]) {
    assert_eq!(
        parse(&args(argv)).unwrap(),
        Invocation::Native { args: args(argv) },
        "{argv:?}"
    );
}

/// The command line of a subcommand without the flag under test, complete where the flag
/// does not need more (a join needs discovery, and a control plane for --certificate-key).
fn base(command: &str, flag: &str) -> Vec<&'static str> {
    if command == "init" {
        return vec!["init"];
    }
    let mut argv = vec!["join"];
    if flag != "discovery-file" {
        argv.push("192.0.2.10:6443");
    }
    if flag == "token" {
        argv.extend(["--discovery-token", TOKEN, "--tls-bootstrap-token", TOKEN]);
    } else {
        argv.extend(["--token", TOKEN]);
    }
    if flag != "discovery-file" && flag != "discovery-token-ca-cert-hash" {
        argv.extend(["--discovery-token-ca-cert-hash", HASH]);
    }
    if flag == "certificate-key" {
        argv.push("--control-plane");
    }
    argv
}
