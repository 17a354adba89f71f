//! The steps that prepare the host itself: what an earlier run left, the u7s-admin account
//! and its subordinate ids, the kernel's modules and settings.

use super::*;

pub(super) fn leftover_step(
    flags: &CommonFlags,
    facts: &HostFacts,
    dry_run: bool,
) -> Result<Option<Step>, PlanError> {
    if facts.leftovers.is_empty() && !facts.runtime_running {
        return Ok(None);
    }
    if !flags.reset && !dry_run {
        let list = facts
            .leftovers
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let list = if list.is_empty() {
            msg!("the u7s namespace is running")
        } else {
            Message::verbatim(list)
        };
        return Err(if facts.runtime_running {
            PlanError::LeftoversRunning { list }
        } else {
            PlanError::Leftovers { list }
        });
    }
    Ok(Some(Step::RemoveLeftovers {
        paths: facts.leftovers.clone(),
        stop_runtime: facts.runtime_running,
        confirmed: flags.reset,
    }))
}

pub(super) fn account_steps(facts: &HostFacts) -> Vec<Step> {
    let mut steps = Vec::new();
    if !facts.u7s_group_exists && facts.u7s_admin.is_none() {
        steps.push(Step::CreateGroup {
            name: U7S_ADMIN.into(),
        });
    }
    match &facts.u7s_admin {
        None => steps.push(Step::CreateUser {
            name: U7S_ADMIN.into(),
            home: U7S_HOME.into(),
            groups: facts.existing_groups.clone(),
        }),
        Some(_) => {
            let missing: Vec<String> = facts
                .existing_groups
                .iter()
                .filter(|g| !facts.u7s_admin_groups.contains(g))
                .cloned()
                .collect();
            if !missing.is_empty() {
                steps.push(Step::AddToGroups {
                    user: U7S_ADMIN.into(),
                    groups: missing,
                });
            }
        }
    }
    let uid = facts.u7s_admin.as_ref().map(|a| a.uid);
    let enough = |text: &str| {
        host_prep::subid_ranges(text, U7S_ADMIN, uid)
            .iter()
            .map(|(_, count)| count)
            .sum::<u64>()
            >= host_prep::SUBID_COUNT
    };
    if !enough(&facts.subuid) || !enough(&facts.subgid) {
        steps.push(Step::AddSubIds {
            user: U7S_ADMIN.into(),
            start: host_prep::free_subid_range(&facts.subuid, &facts.subgid),
            count: host_prep::SUBID_COUNT,
        });
    }
    steps
}

pub(super) fn kernel_steps(facts: &HostFacts) -> Vec<Step> {
    let mut steps = vec![Step::File {
        file: PlannedFile {
            path: host_prep::SYSCTL_FILE.into(),
            mode: 0o644,
            user: "root".into(),
            group: "root".into(),
            contents:
                "# podsec-u7s-kubeadm: pods route through the host\nnet.ipv4.ip_forward = 1\n"
                    .into(),
        },
    }];
    // Loaded at every boot, not only now: the packaged modules-load.d file, else ours in /etc.
    if !facts.modules_persisted {
        steps.push(Step::File {
            file: PlannedFile {
                path: host_prep::MODULES_LOAD_FILE.into(),
                mode: 0o644,
                user: "root".into(),
                group: "root".into(),
                contents: host_prep::modules_load_conf(),
            },
        });
    }
    if !facts.ip_forward {
        steps.push(Step::Sysctl {
            key: "net.ipv4.ip_forward".into(),
            value: "1".into(),
        });
    }
    let missing: Vec<String> = host_prep::MODULES
        .iter()
        .filter(|m| !facts.loaded_modules.iter().any(|l| l == *m))
        .map(|m| m.to_string())
        .collect();
    if !missing.is_empty() {
        steps.push(Step::LoadModules { modules: missing });
    }
    steps
}
