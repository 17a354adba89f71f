//! podsec-log-probe IDENTIFIER LEVEL TEXT: logs one line through the common logger, exactly as a
//! podsec command does, so tests can check what journald or rsyslog receive.

use std::process::ExitCode;

use podsec_common::log::{Level, Logger};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [identifier, level, text] = args.as_slice() else {
        eprintln!("usage: podsec-log-probe IDENTIFIER LEVEL TEXT");
        return ExitCode::from(2);
    };
    let Some(level) = Level::ALL.into_iter().find(|l| l.word() == level) else {
        eprintln!("unknown level {level}");
        return ExitCode::from(2);
    };
    Logger::new(identifier).log(level, text);
    ExitCode::SUCCESS
}
