//! The Nagios plugin contract: threshold ranges, states with their exit codes, and the status
//! line `POLICY <STATE> - <text> | metric=<n>;<warn>;<crit>;0;`.
//!
//! Ranges follow the monitoring-plugins guidelines: `[@]start:end`, where `N` means `0:N`, an
//! empty end is +infinity and `~` as start is -infinity; an alert is raised when the value lies
//! outside the range (or inside it with `@`). Upstream's parser guessed at anything (its manual's
//! `20-100` silently became `0:20`); here a range that is not exactly one of these forms is an
//! error naming the input.

use std::fmt;
use std::process::ExitCode;
use std::str::FromStr;

/// A range that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, podsec_common::i18n::Localize)]
#[error(
    "invalid Nagios range '{input}': {reason} (expected N, N:, ~:N, :N, A:B or @ before any of them)"
)]
pub struct RangeError {
    pub input: String,
    pub reason: &'static str,
}

/// A threshold range; `start`/`end` of `None` are -infinity/+infinity.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    start: Option<f64>,
    end: Option<f64>,
    /// `@`: alert when the value is inside.
    inside: bool,
    /// The text as given, for the performance data.
    text: String,
}

impl Range {
    pub fn parse(input: &str) -> Result<Range, RangeError> {
        let error = |reason| RangeError {
            input: input.to_string(),
            reason,
        };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(error("empty"));
        }
        let (inside, body) = match trimmed.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let (start, end) = match body.split_once(':') {
            None => (
                Some(0.0),
                Some(number(body).ok_or_else(|| error("not a number"))?),
            ),
            Some((start_text, end_text)) => {
                if end_text.contains(':') {
                    return Err(error("more than one ':'"));
                }
                if start_text.is_empty() && end_text.is_empty() {
                    return Err(error("no bounds"));
                }
                let start = match start_text {
                    "" => Some(0.0),
                    "~" => None,
                    text => Some(number(text).ok_or_else(|| error("start is not a number"))?),
                };
                let end = match end_text {
                    "" => None,
                    text => Some(number(text).ok_or_else(|| error("end is not a number"))?),
                };
                (start, end)
            }
        };
        if let (Some(start), Some(end)) = (start, end)
            && start > end
        {
            return Err(error("start is greater than end"));
        }
        Ok(Range {
            start,
            end,
            inside,
            text: trimmed.to_string(),
        })
    }

    /// Whether `value` lies within start..=end (ignoring `@`).
    pub fn contains(&self, value: f64) -> bool {
        self.start.is_none_or(|s| value >= s) && self.end.is_none_or(|e| value <= e)
    }

    /// Whether `value` raises an alert against this range.
    pub fn alerts(&self, value: f64) -> bool {
        self.contains(value) == self.inside
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A plain decimal number: digits with an optional sign and fraction. Rejects what `f64` parsing
/// would also accept but no admin means (`inf`, `NaN`, `1e3`).
fn number(text: &str) -> Option<f64> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let valid = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|&c| c == '.').count() <= 1
        && digits.chars().any(|c| c.is_ascii_digit());
    valid.then(|| text.parse().ok()).flatten()
}

impl FromStr for Range {
    type Err = RangeError;
    fn from_str(s: &str) -> Result<Range, RangeError> {
        Range::parse(s)
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A plugin's answer, with the exit codes of the plugin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl State {
    pub fn code(self) -> u8 {
        match self {
            State::Ok => 0,
            State::Warning => 1,
            State::Critical => 2,
            State::Unknown => 3,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }

    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// Critical wins over warning (upstream picked whichever its hash order met first).
pub fn evaluate(value: f64, warning: Option<&Range>, critical: Option<&Range>) -> State {
    if critical.is_some_and(|r| r.alerts(value)) {
        State::Critical
    } else if warning.is_some_and(|r| r.alerts(value)) {
        State::Warning
    } else {
        State::Ok
    }
}

/// The first output line of a plugin: `<LABEL> <STATE> - <text> | metric=<n>;<warn>;<crit>;0;`.
#[derive(Debug, Clone)]
pub struct StatusLine<'a> {
    pub label: &'a str,
    pub state: State,
    pub text: &'a str,
    pub metric: f64,
    pub warning: Option<&'a Range>,
    pub critical: Option<&'a Range>,
}

impl fmt::Display for StatusLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `|` starts the performance data and the first line ends at a newline: neither may come
        // from the text.
        let text: String = self
            .text
            .chars()
            .map(|c| match c {
                '|' => '/',
                '\n' | '\r' => ' ',
                c => c,
            })
            .collect();
        let range = |r: Option<&Range>| r.map(|r| r.as_str().to_string()).unwrap_or_default();
        write!(
            f,
            "{} {} - {} | metric={};{};{};0;",
            self.label,
            self.state,
            text,
            format_number(self.metric),
            range(self.warning),
            range(self.critical)
        )
    }
}

/// Integers without a fraction, as plugins print counts.
fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> Range {
        Range::parse(text).unwrap()
    }

    /// (range, value, alerts)
    fn check(cases: &[(&str, f64, bool)]) {
        for &(range, value, expected) in cases {
            assert_eq!(
                r(range).alerts(value),
                expected,
                "range {range} value {value}"
            );
        }
    }

    #[test]
    fn plain_n_alerts_outside_zero_to_n() {
        check(&[
            ("10", -1.0, true),
            ("10", 0.0, false),
            ("10", 10.0, false),
            ("10", 11.0, true),
            ("0", 0.0, false),
            ("0", 1.0, true),
        ]);
    }

    #[test]
    fn n_colon_alerts_below_n() {
        check(&[
            ("10:", 9.0, true),
            ("10:", 10.0, false),
            ("10:", 1e9, false),
        ]);
    }

    #[test]
    fn tilde_alerts_above_n_only() {
        check(&[
            ("~:10", -1e9, false),
            ("~:10", 10.0, false),
            ("~:10", 11.0, true),
            // upstream made `~:` behave as `0:`; it is -inf..+inf
            ("~:", -5.0, false),
        ]);
    }

    #[test]
    fn a_to_b_alerts_outside() {
        check(&[
            ("10:20", 9.0, true),
            ("10:20", 10.0, false),
            ("10:20", 20.0, false),
            ("10:20", 21.0, true),
            ("-5:5", -5.0, false),
            ("-5:5", -6.0, true),
            ("0.5:1.5", 1.0, false),
        ]);
    }

    #[test]
    fn colon_b_starts_at_zero() {
        check(&[(":5", -1.0, true), (":5", 0.0, false), (":5", 6.0, true)]);
    }

    #[test]
    fn at_alerts_inside() {
        check(&[
            ("@10:20", 9.0, false),
            ("@10:20", 10.0, true),
            ("@10:20", 20.0, true),
            ("@10:20", 21.0, false),
            ("@5", 0.0, true),
            ("@5", 6.0, false),
            ("@~:3", -100.0, true),
            ("@3:", 2.0, false),
            ("@3:", 3.0, true),
        ]);
    }

    #[test]
    fn malformed_ranges_are_errors_naming_the_input() {
        for bad in [
            "20-100", "@20-100", "", "@", "abc", "1:2:3", "20:10", "1e3", "inf", "~", "~5", "5~:",
            "--1", ":",
        ] {
            let err = Range::parse(bad).expect_err(bad);
            assert_eq!(err.input, bad);
            assert!(err.to_string().contains(&format!("'{bad}'")), "{err}");
        }
    }

    #[test]
    fn critical_wins_over_warning() {
        let warning = r("10");
        let critical = r("20");
        let eval = |v| evaluate(v, Some(&warning), Some(&critical));
        assert_eq!(eval(5.0), State::Ok);
        assert_eq!(eval(15.0), State::Warning);
        assert_eq!(eval(25.0), State::Critical);
        // upstream labelled this Warning (hash order w before c)
        let wide_warning = r("0");
        assert_eq!(
            evaluate(101.0, Some(&wide_warning), Some(&r("100"))),
            State::Critical
        );
        assert_eq!(evaluate(101.0, None, None), State::Ok);
        assert_eq!(evaluate(101.0, Some(&wide_warning), None), State::Warning);
        assert_eq!(evaluate(101.0, None, Some(&r("100"))), State::Critical);
    }

    #[test]
    fn states_have_the_plugin_exit_codes() {
        let codes: Vec<u8> = [State::Ok, State::Warning, State::Critical, State::Unknown]
            .iter()
            .map(|s| s.code())
            .collect();
        assert_eq!(codes, [0, 1, 2, 3]);
        assert_eq!(State::Critical.to_string(), "CRITICAL");
    }

    #[test]
    fn status_line_has_the_perfdata_form() {
        let warning = r("50");
        let critical = r("@100:");
        let line = StatusLine {
            label: "POLICY",
            state: State::Critical,
            text: "3 users | violate\npolicy",
            metric: 107.0,
            warning: Some(&warning),
            critical: Some(&critical),
        };
        assert_eq!(
            line.to_string(),
            "POLICY CRITICAL - 3 users / violate policy | metric=107;50;@100:;0;"
        );
        let ok = StatusLine {
            label: "POLICY",
            state: State::Ok,
            text: "Containerization policies are not violated",
            metric: 0.5,
            warning: None,
            critical: None,
        };
        assert_eq!(
            ok.to_string(),
            "POLICY OK - Containerization policies are not violated | metric=0.5;;;0;"
        );
    }
}
