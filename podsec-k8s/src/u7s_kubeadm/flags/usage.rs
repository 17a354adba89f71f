//! `kubeadm init --help` and `kubeadm join --help`: every flag under its disposition.

use podsec_common::tr;

use super::table::{Disposition, FLAGS, Kind, Scope};

/// The wrapper's usage of `init` or `join`: every flag with its disposition.
pub fn subcommand_usage(command: &str) -> String {
    let mut text = tr!(
        "Usage: kubeadm [-v N] {command} {endpoint}[flags]\n\n\
         podsec-u7s-kubeadm deploys a rootless node: every flag of kubeadm {command} is either\n\
         honoured (put into the generated configuration), passed to the native kubeadm, or refused.\n\n",
        command = command,
        endpoint = if command == "join" { "HOST:PORT " } else { "" }
    );
    for (title, wanted) in [
        (tr!("Honoured:"), 0u8),
        (tr!("Passed to the native kubeadm:"), 1),
        (tr!("Refused:"), 2),
    ] {
        text.push_str(title);
        text.push('\n');
        for f in FLAGS.iter().filter(|f| {
            f.scope == Scope::Global
                || f.scope == Scope::Both
                || (f.scope == Scope::Init && command == "init")
                || (f.scope == Scope::Join && command == "join")
        }) {
            // The notes are translated where printed (FLAGS is a constant table).
            let (class, note) = match f.disposition {
                Disposition::Honoured(note) => (0, podsec_common::i18n::gettext(note)),
                Disposition::Native => (1, ""),
                Disposition::Rejected(reason) => (2, podsec_common::i18n::gettext(reason)),
            };
            if class != wanted {
                continue;
            }
            let name = match (f.short, f.kind) {
                (Some(s), Kind::Bool) => format!("-{s}, --{}", f.name),
                (Some(s), _) => format!("-{s}, --{} VALUE", f.name),
                (None, Kind::Bool) => format!("--{}", f.name),
                (None, Kind::Value) => format!("--{} VALUE", f.name),
                (None, Kind::List) => format!("--{} A,B", f.name),
            };
            if note.is_empty() {
                text.push_str(&format!("  {name}\n"));
            } else {
                text.push_str(&format!("  {name:<48} {note}\n"));
            }
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_lists_each_flag_under_its_disposition() {
        let text = subcommand_usage("init");
        assert!(text.contains("--service-cidr VALUE"), "{text}");
        let refused = text.split("Refused:").nth(1).unwrap();
        assert!(refused.contains("--config VALUE") && refused.contains("--rootfs VALUE"));
        assert!(!subcommand_usage("join").contains("--service-cidr"));
    }
}
