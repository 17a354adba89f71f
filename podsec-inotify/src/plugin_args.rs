//! The flags of the two Nagios plugins (check-policy, check-images), as upstream spells them:
//! `-h` is the High range, so help is `--help` only.

use clap::{ArgAction, Args};

/// Nagios state UNKNOWN.
pub const UNKNOWN: u8 = 3;

#[derive(Args, Debug)]
pub struct PluginArgs {
    /// Verbosity of the report: -v headings, -vv and -vvv full messages
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,
    /// Journal range for Crash findings
    #[arg(short = 'a', value_name = "range")]
    pub crash: Option<String>,
    /// Journal range for Fatal findings
    #[arg(short = 'f', value_name = "range")]
    pub fatal: Option<String>,
    /// Critical range (journal and Nagios)
    #[arg(short = 'c', value_name = "range")]
    pub critical: Option<String>,
    /// Journal range for High findings
    #[arg(short = 'h', value_name = "range")]
    pub high: Option<String>,
    /// Journal range for Middle findings
    #[arg(short = 'm', value_name = "range")]
    pub middle: Option<String>,
    /// Nagios warning range
    #[arg(short = 'w', value_name = "range")]
    pub warning: Option<String>,
    /// Journal range for Low findings
    #[arg(short = 'l', value_name = "range")]
    pub low: Option<String>,
    /// Journal range for Debug findings
    #[arg(short = 'd', value_name = "range")]
    pub debug: Option<String>,
    /// Mail the report to this address
    #[arg(short = 'M', value_name = "address")]
    pub mail_to: Option<String>,
    /// Print a machine-readable JSON report instead of the Nagios line
    #[arg(long)]
    pub json: bool,
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Tokens old unit files pass (`>/dev/null`, `2>&1`): ignored with a warning
    #[arg(hide = true)]
    pub stray: Vec<String>,
}

/// The common part of the plugins' help (a macro, so that each plugin can `concat!` it).
#[macro_export]
macro_rules! ranges_help {
    () => {
        "Ranges are Nagios ranges: N (0..N), N: (>= N), ~:N (<= N), :N, A:B, and @ before any of \
them (alert inside). -c is the critical range of the journal and of Nagios, -w the Nagios warning \
range, -a -f -h -m -l -d the journal ranges of Crash, Fatal, High, Middle, Low, Debug: a finding is \
logged at the most severe level whose range its weight is outside of; the metric (sum of the \
weights) against -w and -c gives the state, critical before warning.\n\
Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. With -M, a report is mailed when the state \
is not OK. Environment: none read. Must be run as root."
    };
}
