//! podsec-k8s-rbac-get-userroles: the roles a user is bound to, as JSON.

use podsec_common::msg;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use kube::api::ListParams;
use kube::{Api, Client};
use podsec_common::cli;
use podsec_common::host::users;
use podsec_common::i18n::Localize;
use serde::Serialize;

use crate::api::{self, AdminConfig};
use crate::binding::is_user;
use crate::error::{Error, is_not_found};
use crate::{csr, names, user_kubeconfig};

pub const NAME: &str = "podsec-k8s-rbac-get-userroles";

/// Print, as JSON, the cluster roles and the roles per namespace a user is bound to, each with
/// the command that removes the binding.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "The user's groups are the O= fields of the client certificate in ~user/.kube/config \
(when the account is local and the file readable) and those given with --group. Bindings reached \
through a group are listed with \"viaGroups\" and without unbindCmd.\n\n\
Environment:\n  KUBECONFIG    administrator's kubeconfig (default ~/.kube/config, then /etc/kubernetes/admin.conf)"
)]
pub struct Args {
    /// The user
    pub user: String,
    /// `showRules` also prints the rules of each role
    #[arg(value_name = "showRules")]
    pub show_rules: Option<String>,
    /// A group of the user besides those of their certificate (repeatable)
    #[arg(long = "group", value_name = "group")]
    pub groups: Vec<String>,
}

/// One binding in the output (the upstream field names).
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub bind_name: String,
    pub role_type: String,
    pub role_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unbind_cmd: Option<String>,
    /// The user's groups the binding names, when it reaches the user through them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub via_groups: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Option<Vec<PolicyRule>>>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct UserRoles {
    cluster_roles: Vec<Entry>,
    roles: Namespaces,
}

#[derive(Serialize, Debug)]
struct Namespaces {
    namespaces: Vec<BTreeMap<String, Vec<Entry>>>,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    names::check_user(&args.user)?;
    let show_rules = match args.show_rules.as_deref() {
        None => false,
        Some("showRules") => true,
        Some(other) => {
            return Err(Error::Invalid(msg!(
                "invalid second argument '{}': the only one is showRules",
                other.escape_debug()
            )));
        }
    };
    for group in &args.groups {
        names::check_group(group, true)?;
    }
    let mut groups = certificate_groups(&args.user);
    for group in &args.groups {
        if !groups.contains(group) {
            groups.push(group.clone());
        }
    }
    let admin = AdminConfig::load()?;
    let report = api::block_on(async {
        let client = admin.client().await?;
        collect(client, &args.user, &groups, show_rules).await
    })??;
    let mut out = BTreeMap::new();
    out.insert(args.user.clone(), report);
    let text = serde_json::to_string_pretty(&out)
        .map_err(|e| Error::Failed(msg!("cannot write the report: {e}")))?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// The O= groups of the certificate in the user's kubeconfig; none when there is no local
/// account or no readable kubeconfig (said on stderr, the report still lists direct bindings).
fn certificate_groups(user: &str) -> Vec<String> {
    let Ok(Some(account)) = users::find_user(user) else {
        return Vec::new();
    };
    let path = account.home.join(".kube/config");
    // Only printed below: each reason in the user's language (a certificate parser's is English).
    let result = user_kubeconfig::read_no_follow(&path)
        .map_err(|e| e.localized())
        .and_then(|text| user_kubeconfig::client_certificate(&text).map_err(|m| m.localized()))
        .and_then(|pem| csr::groups_of_certificate(&pem));
    match result {
        Ok(groups) => groups,
        Err(why) => {
            eprintln!(
                "{NAME}: {}",
                msg!(
                    "note: no groups from {} ({why}); only --group ones are used",
                    path.display()
                )
                .localized()
            );
            Vec::new()
        }
    }
}

/// How a binding reaches the user: directly, through some of their groups, or not at all.
fn reach(subjects: Option<&Vec<Subject>>, user: &str, groups: &[String]) -> (bool, Vec<String>) {
    let subjects = subjects.map(Vec::as_slice).unwrap_or_default();
    let direct = subjects.iter().any(|s| is_user(s, user));
    let mut via: Vec<String> = subjects
        .iter()
        .filter(|s| s.kind == "Group" && groups.contains(&s.name))
        .map(|s| s.name.clone())
        .collect();
    via.sort();
    via.dedup();
    (direct, via)
}

/// A command line a shell reads back as the same words (names may hold any character but '/'
/// and '%').
pub fn shell_words(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:=@+,".contains(c));
            if plain {
                w.to_string()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn entry(
    name: &str,
    role_ref: &RoleRef,
    direct: bool,
    via_groups: Vec<String>,
    unbind: &[&str],
) -> Entry {
    Entry {
        bind_name: name.to_string(),
        role_type: role_ref.kind.clone(),
        role_name: role_ref.name.clone(),
        unbind_cmd: direct.then(|| shell_words(unbind)),
        via_groups,
        rules: None,
    }
}

async fn collect(
    client: Client,
    user: &str,
    groups: &[String],
    show_rules: bool,
) -> Result<UserRoles, Error> {
    let crbs: Api<ClusterRoleBinding> = Api::all(client.clone());
    let rbs: Api<RoleBinding> = Api::all(client.clone());
    let crb_list = crbs
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::api(msg!("cannot list ClusterRoleBindings"), &e))?;
    // One request for every namespace (upstream made one per namespace).
    let rb_list = rbs
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::api(msg!("cannot list RoleBindings"), &e))?;

    let mut cluster_roles = Vec::new();
    for b in &crb_list.items {
        let (direct, via) = reach(b.subjects.as_ref(), user, groups);
        if !direct && via.is_empty() {
            continue;
        }
        let name = b.metadata.name.as_deref().unwrap_or_default();
        let mut e = entry(
            name,
            &b.role_ref,
            direct,
            via,
            &[
                "podsec-k8s-rbac-unbindrole",
                user,
                "clusterrole",
                &b.role_ref.name,
                name,
            ],
        );
        if show_rules {
            e.rules = Some(rules(&client, &b.role_ref, None).await?);
        }
        cluster_roles.push(e);
    }
    cluster_roles.sort_by(|a, b| a.bind_name.cmp(&b.bind_name));

    let mut by_namespace: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for b in &rb_list.items {
        let (direct, via) = reach(b.subjects.as_ref(), user, groups);
        if !direct && via.is_empty() {
            continue;
        }
        let name = b.metadata.name.as_deref().unwrap_or_default();
        let ns = b.metadata.namespace.as_deref().unwrap_or_default();
        let mut e = entry(
            name,
            &b.role_ref,
            direct,
            via,
            &[
                "podsec-k8s-rbac-unbindrole",
                user,
                "role",
                &b.role_ref.name,
                name,
                ns,
            ],
        );
        if show_rules {
            e.rules = Some(rules(&client, &b.role_ref, Some(ns)).await?);
        }
        by_namespace.entry(ns.to_string()).or_default().push(e);
    }
    let namespaces = by_namespace
        .into_iter()
        .map(|(ns, mut entries)| {
            entries.sort_by(|a, b| a.bind_name.cmp(&b.bind_name));
            BTreeMap::from([(ns, entries)])
        })
        .collect();
    Ok(UserRoles {
        cluster_roles,
        roles: Namespaces { namespaces },
    })
}

/// The rules of the role a binding refers to: a Role in the binding's own namespace (upstream
/// looked in the default one), a ClusterRole otherwise; null when the role does not exist.
async fn rules(
    client: &Client,
    role_ref: &RoleRef,
    namespace: Option<&str>,
) -> Result<Option<Vec<PolicyRule>>, Error> {
    let result = match (role_ref.kind.as_str(), namespace) {
        ("Role", Some(ns)) => Api::<Role>::namespaced(client.clone(), ns)
            .get(&role_ref.name)
            .await
            .map(|r| r.rules.unwrap_or_default()),
        _ => Api::<ClusterRole>::all(client.clone())
            .get(&role_ref.name)
            .await
            .map(|r| r.rules.unwrap_or_default()),
    };
    match result {
        Ok(rules) => Ok(Some(rules)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(Error::api(
            msg!("cannot read {} '{}'", role_ref.kind, role_ref.name),
            &e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbind_commands_read_back_as_the_same_words() {
        assert_eq!(
            shell_words(&[
                "podsec-k8s-rbac-unbindrole",
                "alice",
                "role",
                "view",
                "rb",
                "ns1"
            ]),
            "podsec-k8s-rbac-unbindrole alice role view rb ns1"
        );
        assert_eq!(
            shell_words(&["x", "system:auth-delegator", "a b", "it's", "$(id)"]),
            r"x system:auth-delegator 'a b' 'it'\''s' '$(id)'"
        );
    }

    #[test]
    fn group_reach_is_separate_from_the_user() {
        let subjects = vec![
            Subject {
                kind: "Group".into(),
                name: "alice".into(),
                api_group: Some("rbac.authorization.k8s.io".into()),
                namespace: None,
            },
            Subject {
                kind: "Group".into(),
                name: "devs".into(),
                api_group: Some("rbac.authorization.k8s.io".into()),
                namespace: None,
            },
            Subject {
                kind: "ServiceAccount".into(),
                name: "alice".into(),
                api_group: None,
                namespace: Some("ns1".into()),
            },
        ];
        let (direct, via) = reach(Some(&subjects), "alice", &["devs".into()]);
        assert!(
            !direct,
            "a Group or ServiceAccount named alice is not the user"
        );
        assert_eq!(via, ["devs"]);
    }

    #[test]
    fn entry_shape_is_upstreams() {
        let role_ref = RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: "view".into(),
        };
        let e = entry("rb", &role_ref, true, vec![], &["u", "alice"]);
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"bindName":"rb","roleType":"ClusterRole","roleName":"view","unbindCmd":"u alice"})
        );
    }
}
