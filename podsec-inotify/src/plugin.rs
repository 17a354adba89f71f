//! The Nagios plugin core shared by check-policy and check-images.
//!
//! A plugin collects *findings*: a weight (101, 102, ... or 90 times a share of users), a short
//! heading, the users concerned and the full message. Then, as upstream's manual describes:
//! - each finding is logged (one `<Level>: <weight>: <message>` line) when its weight raises an
//!   alert against a journal range; its level is the most severe such level, in severity order
//!   Crash, Fatal, Critical, High, Middle, Low, Debug (upstream took bash's hash order);
//! - the weights of all findings are summed into the metric, and the metric against the Nagios
//!   ranges gives the state (critical wins over warning);
//! - the first output line is `POLICY <STATE> - <text> | metric=<n>;<warn>;<crit>;0;`, the
//!   exit code the state's (upstream always exited 0 and printed nothing on a violation);
//! - with `-M address` a report with every message is mailed when the state is not OK.
//!
//! A user whose configuration cannot be read is an *error*: reported, logged as a Warning, and
//! the state is UNKNOWN unless the findings already make it CRITICAL.

use std::ffi::OsString;
use std::process::ExitCode;

use crate::nagios::{self, Range, RangeError, State, StatusLine};
use clap::Parser;
use podsec_common::cli;
use podsec_common::log::{Level, Logger};
use podsec_common::tr;
use serde::Serialize;

use crate::mail;
use crate::plugin_args::{PluginArgs, UNKNOWN};

/// The label of the status line, as upstream.
pub const LABEL: &str = "POLICY";

/// The ranges in force.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    /// Journal ranges, in severity order.
    pub journal: Vec<(Level, Range)>,
    pub warning: Option<Range>,
    pub critical: Option<Range>,
}

/// `-c 100`: a finding of weight 101 or more is logged as Critical and makes the state CRITICAL.
pub const DEFAULT_CRITICAL: &str = "100";
/// The verbosity when the plugin is run without any argument.
pub const DEFAULT_VERBOSITY: u8 = 2;

impl Thresholds {
    /// The ranges of the command line. `-c` is both the journal and the Nagios critical range,
    /// `-w` the Nagios warning range, the other letters journal ranges. Without any range
    /// option, `-c 100` applies (upstream did so only without any argument at all, and a manual
    /// run with, say, only `-M root` always answered OK).
    pub fn from_args(args: &PluginArgs) -> Result<Thresholds, RangeError> {
        let parse = |text: &Option<String>| text.as_deref().map(Range::parse).transpose();
        let journal_flags = [
            (Level::Crash, &args.crash),
            (Level::Fatal, &args.fatal),
            (Level::Critical, &args.critical),
            (Level::High, &args.high),
            (Level::Middle, &args.middle),
            (Level::Low, &args.low),
            (Level::Debug, &args.debug),
        ];
        let any = journal_flags.iter().any(|(_, v)| v.is_some()) || args.warning.is_some();
        if !any {
            let critical = Range::parse(DEFAULT_CRITICAL)?;
            return Ok(Thresholds {
                journal: vec![(Level::Critical, critical.clone())],
                warning: None,
                critical: Some(critical),
            });
        }
        let mut journal = Vec::new();
        for (level, text) in journal_flags {
            if let Some(range) = parse(text)? {
                journal.push((level, range));
            }
        }
        Ok(Thresholds {
            journal,
            warning: parse(&args.warning)?,
            critical: parse(&args.critical)?,
        })
    }

    /// The level a finding of `weight` is logged at: the most severe level whose range is set
    /// and alerts; `None` = not logged.
    pub fn journal_level(&self, weight: u64) -> Option<Level> {
        self.journal
            .iter()
            .find(|(_, range)| range.alerts(weight as f64))
            .map(|(level, _)| *level)
    }

    pub fn state(&self, metric: u64) -> State {
        nagios::evaluate(metric as f64, self.warning.as_ref(), self.critical.as_ref())
    }
}

/// How verbose the report is: upstream's `-v` count, or 2 when no argument at all is given.
pub fn verbosity(args: &PluginArgs, argument_count: usize) -> u8 {
    if args.verbose > 0 {
        args.verbose.min(3)
    } else if argument_count == 0 {
        DEFAULT_VERBOSITY
    } else {
        0
    }
}

/// One violation class with the users it concerns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub weight: u64,
    /// A stable identifier for machines (`--json`).
    pub check: &'static str,
    /// The short heading of the Nagios report.
    pub heading: String,
    pub users: Vec<String>,
    /// The full message, without level and weight.
    pub message: String,
}

/// What a plugin found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Users or files that could not be checked.
    pub errors: Vec<String>,
    /// Extra lines for `-vvv` (what was checked).
    pub details: Vec<String>,
    /// The plugin's own data for `--json` (users, images).
    pub data: serde_json::Value,
}

/// The texts of the status line.
#[derive(Debug, Clone, Copy)]
pub struct Wording {
    /// No finding.
    pub ok: &'static str,
    /// Findings: followed by the quoted users.
    pub violation: &'static str,
}

/// The evaluated report.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub metric: u64,
    pub state: State,
    /// The journal level of each finding (same order).
    pub levels: Vec<Option<Level>>,
}

pub fn evaluate(thresholds: &Thresholds, report: &Report) -> Outcome {
    let metric = report.findings.iter().map(|f| f.weight).sum();
    let levels = report
        .findings
        .iter()
        .map(|f| thresholds.journal_level(f.weight))
        .collect();
    let mut state = thresholds.state(metric);
    if !report.errors.is_empty() && state != State::Critical {
        state = State::Unknown;
    }
    Outcome {
        metric,
        state,
        levels,
    }
}

/// `"alice" "bob"`: names JSON-quoted (so a strange name cannot forge a line), space-separated.
pub fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| serde_json::to_string(n).expect("a string serialises"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every user of the findings, sorted, each once.
pub fn all_users(report: &Report) -> Vec<String> {
    let mut users: Vec<String> = report
        .findings
        .iter()
        .flat_map(|f| f.users.iter().cloned())
        .collect();
    users.sort();
    users.dedup();
    users
}

/// The text of the status line (before the performance data).
pub fn status_text(wording: &Wording, report: &Report, outcome: &Outcome) -> String {
    let users = all_users(report);
    let mut text = if report.findings.is_empty() {
        wording.ok.to_string()
    } else {
        format!("{}: {}", wording.violation, quoted(&users))
    };
    if !report.findings.is_empty() && outcome.state == State::Ok {
        text = format!("within the thresholds: {text}");
    }
    if !report.errors.is_empty() {
        text.push_str(&format!(
            "; {} could not be checked",
            match report.errors.len() {
                1 => "1 item".to_string(),
                n => format!("{n} items"),
            }
        ));
    }
    text
}

pub fn status_line(
    thresholds: &Thresholds,
    wording: &Wording,
    report: &Report,
    outcome: &Outcome,
) -> String {
    let text = status_text(wording, report, outcome);
    StatusLine {
        label: LABEL,
        state: outcome.state,
        text: &text,
        metric: outcome.metric as f64,
        warning: thresholds.warning.as_ref(),
        critical: thresholds.critical.as_ref(),
    }
    .to_string()
}

/// `Critical(101): <message>`, or `(22): <message>` for a finding that is not logged.
pub fn full_message(finding: &Finding, level: Option<Level>) -> String {
    match level {
        Some(level) => format!("{level}({}): {}", finding.weight, finding.message),
        None => format!("({}): {}", finding.weight, finding.message),
    }
}

/// The plugin output: the status line, then per verbosity the headings (1), the full messages
/// (2) and what was checked (3). Errors are listed from verbosity 1 on.
pub fn render(
    thresholds: &Thresholds,
    wording: &Wording,
    report: &Report,
    outcome: &Outcome,
    verbosity: u8,
) -> String {
    let mut out = status_line(thresholds, wording, report, outcome);
    out.push('\n');
    if verbosity >= 1 {
        if !report.findings.is_empty() {
            out.push_str("There are users:\n");
            for finding in &report.findings {
                out.push_str(&format!(
                    "  {} ({}): {}\n",
                    finding.heading,
                    finding.weight,
                    quoted(&finding.users)
                ));
            }
        }
        for error in &report.errors {
            out.push_str(&format!("Error: {error}\n"));
        }
    }
    if verbosity >= 2 {
        for (finding, level) in report.findings.iter().zip(&outcome.levels) {
            out.push_str(&full_message(finding, *level));
            out.push('\n');
        }
    }
    if verbosity >= 3 {
        for line in &report.details {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    #[serde(flatten)]
    finding: &'a Finding,
    level: Option<&'static str>,
}

/// The `--json` report.
pub fn json(
    plugin: &str,
    thresholds: &Thresholds,
    wording: &Wording,
    report: &Report,
    outcome: &Outcome,
) -> serde_json::Value {
    let journal: serde_json::Map<String, serde_json::Value> = thresholds
        .journal
        .iter()
        .map(|(level, range)| (level.word().to_string(), range.as_str().into()))
        .collect();
    let findings: Vec<JsonFinding> = report
        .findings
        .iter()
        .zip(&outcome.levels)
        .map(|(finding, level)| JsonFinding {
            finding,
            level: level.map(Level::word),
        })
        .collect();
    serde_json::json!({
        "plugin": plugin,
        "state": outcome.state.word(),
        "exit_code": outcome.state.code(),
        "metric": outcome.metric,
        "status": status_line(thresholds, wording, report, outcome),
        "thresholds": {
            "warning": thresholds.warning.as_ref().map(Range::as_str),
            "critical": thresholds.critical.as_ref().map(Range::as_str),
            "journal": journal,
        },
        "findings": findings,
        "errors": report.errors,
        "data": report.data,
    })
}

/// Header lines may be 998 characters and a list of a thousand users is longer: the subject is
/// cut (the body has everything).
const MAX_SUBJECT: usize = 300;

pub fn mail_subject(status: &str) -> String {
    if status.chars().count() <= MAX_SUBJECT {
        status.to_string()
    } else {
        let mut cut: String = status.chars().take(MAX_SUBJECT - 3).collect();
        cut.push_str("...");
        cut
    }
}

/// The settings of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub thresholds: Thresholds,
    pub verbosity: u8,
    pub mail_to: Option<String>,
    pub json: bool,
}

/// Why a plugin could not run: UNKNOWN with the reason on the status line.
#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum SettingsError {
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error("-M: {0}")]
    Mail(#[from] mail::MailError),
}

impl Settings {
    pub fn from_args(args: &PluginArgs, argument_count: usize) -> Result<Settings, SettingsError> {
        if let Some(to) = &args.mail_to {
            mail::check_address(to)?;
        }
        Ok(Settings {
            thresholds: Thresholds::from_args(args)?,
            verbosity: verbosity(args, argument_count),
            mail_to: args.mail_to.clone(),
            json: args.json,
        })
    }
}

/// `POLICY UNKNOWN - <why>` on stdout, exit 3: the plugin contract for failures.
pub fn unknown(why: &str) -> ExitCode {
    let line = StatusLine {
        label: LABEL,
        state: State::Unknown,
        text: why,
        metric: 0.0,
        warning: None,
        critical: None,
    }
    .to_string();
    // The status line without performance data: there is no metric.
    let line = line
        .split(" | metric=")
        .next()
        .unwrap_or_default()
        .to_string();
    println!("{line}");
    ExitCode::from(UNKNOWN)
}

/// A plugin's argument type.
pub trait PluginCommand: Parser {
    fn plugin(&self) -> &PluginArgs;
}

/// The entry point of a plugin: parse (usage errors are UNKNOWN, exit 3, not clap's 2 which
/// Nagios reads as CRITICAL), refuse non-root callers, warn about stray tokens, collect, report.
pub fn main<A: PluginCommand>(
    name: &'static str,
    wording: &Wording,
    argv: Vec<OsString>,
    collect: impl FnOnce(&A) -> Report,
) -> ExitCode {
    let argument_count = argv.len().saturating_sub(1);
    let args = match cli::parse::<A>(argv) {
        Ok(args) => args,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = err.print();
                return ExitCode::SUCCESS;
            }
            return unknown(&cli::one_line_usage_error(&err));
        }
    };
    if cli::require_root().is_err() {
        return unknown("plugin must be run as root user");
    }
    let plugin = args.plugin();
    for token in &plugin.stray {
        eprintln!(
            "{name}: {}",
            tr!(
                "warning: ignoring argument '{token}' (systemd does not interpret shell redirections)",
                token = token
            )
        );
    }
    let settings = match Settings::from_args(plugin, argument_count) {
        Ok(settings) => settings,
        Err(err) => return unknown(&err.to_string()),
    };
    let report = collect(&args);
    finish(name, wording, &settings, &report, &Logger::new(name))
}

/// Logs, prints, mails, and returns the exit code.
pub fn finish(
    name: &str,
    wording: &Wording,
    settings: &Settings,
    report: &Report,
    logger: &Logger,
) -> ExitCode {
    let outcome = evaluate(&settings.thresholds, report);
    for (finding, level) in report.findings.iter().zip(&outcome.levels) {
        if let Some(level) = level {
            logger.log(*level, &format!("{}: {}", finding.weight, finding.message));
        }
    }
    for error in &report.errors {
        logger.log(Level::Warning, &format!("cannot check: {error}"));
    }
    if settings.json {
        let value = json(name, &settings.thresholds, wording, report, &outcome);
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("JSON serialises")
        );
    } else {
        print!(
            "{}",
            render(
                &settings.thresholds,
                wording,
                report,
                &outcome,
                settings.verbosity
            )
        );
    }
    if let Some(to) = &settings.mail_to
        && outcome.state != State::Ok
    {
        let line = status_line(&settings.thresholds, wording, report, &outcome);
        let subject = mail_subject(line.split(" | metric=").next().unwrap_or_default());
        // The mail always carries every message, whatever the verbosity of the output.
        let body = render(
            &settings.thresholds,
            wording,
            report,
            &outcome,
            settings.verbosity.max(DEFAULT_VERBOSITY),
        );
        if let Err(err) = mail::send(to, &subject, &body) {
            // The administrator's copy in their language; the journal's stays English.
            eprintln!("{name}: {}", podsec_common::i18n::Localize::localized(&err));
            logger.log(Level::Warning, &err.to_string());
        }
    }
    outcome.state.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(argv: &[&str]) -> PluginArgs {
        #[derive(Parser)]
        #[command(disable_help_flag = true)]
        struct Test {
            #[command(flatten)]
            plugin: PluginArgs,
        }
        let mut all = vec!["test"];
        all.extend(argv);
        Test::try_parse_from(all).unwrap().plugin
    }

    fn thresholds(argv: &[&str]) -> Thresholds {
        Thresholds::from_args(&args(argv)).unwrap()
    }

    fn finding(weight: u64, users: &[&str]) -> Finding {
        Finding {
            weight,
            check: "test",
            heading: "heading".into(),
            users: users.iter().map(|u| u.to_string()).collect(),
            message: format!("message {weight}"),
        }
    }

    fn report(findings: Vec<Finding>) -> Report {
        Report {
            findings,
            ..Report::default()
        }
    }

    const WORDING: Wording = Wording {
        ok: "Containerization policies are not violated",
        violation: "Violation of user containerization policies by users",
    };

    #[test]
    fn no_range_option_means_critical_100_for_journal_and_nagios() {
        for argv in [&[][..], &["-vvv"], &["-M", "root"], &["--json"]] {
            let t = thresholds(argv);
            assert_eq!(
                t.critical.as_ref().map(Range::as_str),
                Some("100"),
                "{argv:?}"
            );
            assert_eq!(t.journal.len(), 1);
            assert_eq!(t.journal_level(101), Some(Level::Critical));
            assert_eq!(t.journal_level(100), None);
            assert_eq!(t.warning, None);
        }
        // any range option replaces the default
        let t = thresholds(&["-w", "50"]);
        assert!(t.critical.is_none() && t.journal.is_empty());
        assert_eq!(t.state(51), State::Warning);
    }

    #[test]
    fn c_sets_journal_and_nagios_w_only_nagios() {
        let t = thresholds(&["-c", "200", "-w", "10", "-h", "0"]);
        assert_eq!(t.critical.as_ref().unwrap().as_str(), "200");
        assert_eq!(t.warning.as_ref().unwrap().as_str(), "10");
        let levels: Vec<Level> = t.journal.iter().map(|(l, _)| *l).collect();
        assert_eq!(levels, [Level::Critical, Level::High]);
    }

    #[test]
    fn the_most_severe_alerting_level_wins_not_hash_order() {
        // upstream: -h 0 -c 100 labelled 101 as High
        let t = thresholds(&["-h", "0", "-c", "100"]);
        assert_eq!(t.journal_level(101), Some(Level::Critical));
        assert_eq!(t.journal_level(50), Some(Level::High));
        assert_eq!(t.journal_level(0), None);
        let t = thresholds(&[
            "-a", "1000", "-f", "500", "-c", "200", "-m", "100", "-l", "50", "-d", "0",
        ]);
        let cases = [
            (1001, Level::Crash),
            (501, Level::Fatal),
            (201, Level::Critical),
            (101, Level::Middle),
            (51, Level::Low),
            (1, Level::Debug),
        ];
        for (weight, level) in cases {
            assert_eq!(t.journal_level(weight), Some(level), "{weight}");
        }
        assert_eq!(t.journal_level(0), None);
        // @ inverts: alert inside
        let t = thresholds(&["-h", "@90:110"]);
        assert_eq!(t.journal_level(101), Some(Level::High));
        assert_eq!(t.journal_level(111), None);
    }

    #[test]
    fn critical_wins_over_warning_for_the_state() {
        let t = thresholds(&["-w", "0", "-c", "100"]);
        assert_eq!(t.state(0), State::Ok);
        assert_eq!(t.state(22), State::Warning);
        assert_eq!(t.state(101), State::Critical);
    }

    #[test]
    fn bad_ranges_and_addresses_are_settings_errors() {
        let err = Settings::from_args(&args(&["-c", "20-100"]), 2).unwrap_err();
        assert!(err.to_string().contains("'20-100'"), "{err}");
        let err = Settings::from_args(&args(&["-M", "a b"]), 2).unwrap_err();
        assert!(err.to_string().starts_with("-M: "), "{err}");
    }

    #[test]
    fn verbosity_is_the_v_count_or_2_without_arguments() {
        assert_eq!(verbosity(&args(&[]), 0), 2);
        assert_eq!(verbosity(&args(&["-c", "1"]), 2), 0);
        assert_eq!(verbosity(&args(&["-v"]), 1), 1);
        assert_eq!(verbosity(&args(&["-vv"]), 1), 2);
        assert_eq!(verbosity(&args(&["-vvv"]), 1), 3);
        assert_eq!(verbosity(&args(&["-v", "-v", "-v", "-v"]), 4), 3);
    }

    #[test]
    fn the_metric_is_the_sum_of_all_findings_and_errors_make_unknown() {
        let t = thresholds(&[]);
        let r = report(vec![
            finding(101, &["carol"]),
            finding(22, &["bob"]),
            finding(22, &["erin"]),
        ]);
        let outcome = evaluate(&t, &r);
        assert_eq!(outcome.metric, 145);
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(outcome.levels, [Some(Level::Critical), None, None]);
        // below the range: OK, but the findings are still told
        let r = report(vec![finding(22, &["bob"])]);
        let outcome = evaluate(&t, &r);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(
            status_line(&t, &WORDING, &r, &outcome),
            "POLICY OK - within the thresholds: Violation of user containerization policies by users: \"bob\" | metric=22;;100;0;"
        );
        let mut r = report(vec![]);
        r.errors.push("user x: bad".into());
        let outcome = evaluate(&t, &r);
        assert_eq!(outcome.state, State::Unknown);
        r.findings.push(finding(101, &["x"]));
        assert_eq!(evaluate(&t, &r).state, State::Critical);
        // no finding at all
        let r = report(vec![]);
        let outcome = evaluate(&t, &r);
        assert_eq!(
            status_line(&t, &WORDING, &r, &outcome),
            "POLICY OK - Containerization policies are not violated | metric=0;;100;0;"
        );
    }

    #[test]
    fn verbosity_levels_add_headings_messages_and_details() {
        let t = thresholds(&[]);
        let mut r = report(vec![
            finding(101, &["carol", "dave"]),
            finding(22, &["bob"]),
        ]);
        r.details.push("checked: root".into());
        r.errors.push("user eve: unreadable".into());
        let outcome = evaluate(&t, &r);
        let v0 = render(&t, &WORDING, &r, &outcome, 0);
        assert_eq!(v0.lines().count(), 1, "{v0}");
        assert!(v0.starts_with("POLICY CRITICAL - Violation of user containerization policies by users: \"bob\" \"carol\" \"dave\"; 1 item could not be checked | metric=123;;100;0;"), "{v0}");
        let v1 = render(&t, &WORDING, &r, &outcome, 1);
        assert_eq!(
            v1.lines().skip(1).collect::<Vec<_>>(),
            [
                "There are users:",
                "  heading (101): \"carol\" \"dave\"",
                "  heading (22): \"bob\"",
                "Error: user eve: unreadable"
            ]
        );
        let v2 = render(&t, &WORDING, &r, &outcome, 2);
        assert!(
            v2.ends_with("Critical(101): message 101\n(22): message 22\n"),
            "{v2}"
        );
        let v3 = render(&t, &WORDING, &r, &outcome, 3);
        assert!(v3.ends_with("checked: root\n"), "{v3}");
    }

    #[test]
    fn long_subjects_are_cut() {
        assert_eq!(mail_subject("POLICY OK - x"), "POLICY OK - x");
        let long = mail_subject(&"u".repeat(5000));
        assert_eq!(long.chars().count(), MAX_SUBJECT);
        assert!(long.ends_with("..."));
    }

    #[test]
    fn names_are_quoted_so_they_cannot_break_lines() {
        assert_eq!(
            quoted(&["a\nCritical: x".into(), "b\"".into()]),
            r#""a\nCritical: x" "b\"""#
        );
    }

    #[test]
    fn json_report_has_state_metric_levels_and_ranges() {
        let t = thresholds(&["-w", "10", "-c", "100"]);
        let r = report(vec![finding(101, &["carol"]), finding(22, &["bob"])]);
        let outcome = evaluate(&t, &r);
        let value = json("podsec-inotify-check-policy", &t, &WORDING, &r, &outcome);
        assert_eq!(value["state"], "CRITICAL");
        assert_eq!(value["exit_code"], 2);
        assert_eq!(value["metric"], 123);
        assert_eq!(value["findings"][0]["level"], "Critical");
        assert_eq!(value["findings"][0]["users"][0], "carol");
        assert_eq!(value["findings"][1]["level"], serde_json::Value::Null);
        assert_eq!(value["thresholds"]["warning"], "10");
        assert_eq!(value["thresholds"]["journal"]["Critical"], "100");
    }
}
