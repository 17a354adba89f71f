//! The text of a plan (`--dry-run` and the log of a real run).

use super::step::argv_text;
use super::*;
use podsec_common::i18n::Localize;

impl Plan {
    /// The text `--dry-run` prints.
    pub fn render(&self, dry_run: bool) -> String {
        let mut out = String::new();
        let title = if dry_run {
            tr!(
                "podsec-u7s-kubeadm {command}: the plan (dry run: nothing was changed)",
                command = self.command
            )
        } else {
            tr!(
                "podsec-u7s-kubeadm {command}: the plan",
                command = self.command
            )
        };
        let _ = writeln!(out, "{title}");
        out.push('\n');
        let width = self
            .summary
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (key, value) in &self.summary {
            let _ = writeln!(out, "  {key:<width$}  {value}");
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "  {note}");
            }
        }
        let _ = writeln!(out, "\n{}", tr!("Steps:"));
        for (i, step) in self.steps.iter().enumerate() {
            let _ = writeln!(out, "  {:>2}. {}", i + 1, step.describe().localized());
            match step {
                Step::InstallPackages { commands, .. } => {
                    for c in commands {
                        let _ = writeln!(out, "      $ {}", argv_text(c));
                    }
                }
                Step::File { file } => {
                    for line in file.contents.lines() {
                        let _ = writeln!(out, "      | {line}");
                    }
                }
                Step::NodeConfig { config } => {
                    for line in node_config_text(config).lines() {
                        let _ = writeln!(out, "      | {line}");
                    }
                }
                Step::PullImages { commands } => {
                    for c in commands {
                        let _ = writeln!(out, "      $ {}", argv_text(c));
                    }
                }
                _ => {}
            }
        }
        if self.prepare_only {
            let _ = writeln!(
                out,
                "  {}",
                tr!("(--prepare-only: the node is not started; run again without it to deploy)")
            );
        }
        let _ = writeln!(out, "\n{}", tr!("Images:"));
        for image in &self.images {
            if image.substituted() {
                let _ = writeln!(
                    out,
                    "  {}",
                    tr!(
                        "{pull} (substitute, kept as {wanted})",
                        pull = image.pull,
                        wanted = image.wanted
                    )
                );
            } else {
                let _ = writeln!(out, "  {}", image.pull);
            }
        }
        if let Some(pending) = &self.images_pending {
            let _ = writeln!(out, "  {}", tr!("and {pending}", pending = pending));
        }
        let _ = writeln!(out, "\n{}", tr!("Processes:"));
        for p in &self.processes {
            let _ = writeln!(out, "  {p}");
        }
        let _ = writeln!(out, "\n{}", tr!("Published ports (host -> u7s namespace):"));
        let ports: Vec<String> = self.ports.iter().map(|p| p.to_string()).collect();
        let _ = writeln!(out, "  {}", ports.join(" "));
        out
    }
}

/// The node configuration's text as the dry run shows it.
fn node_config_text(config: &NodeConfig) -> String {
    let body = toml::to_string(config).unwrap_or_default();
    let body = if config.uid == 0 {
        body.replace(
            "uid = 0\n",
            "uid = 0  # u7s-admin's uid, filled in when the account exists\n",
        )
    } else {
        body
    };
    format!("# podsec u7s node configuration, written by podsec-u7s-kubeadm; root-owned.\n{body}")
}
