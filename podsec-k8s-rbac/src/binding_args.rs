//! The arguments bindrole and unbindrole share, and what they mean once checked.

use clap::Args;
use podsec_common::i18n::Message;
use podsec_common::msg;

use crate::error::Error;
use crate::names;

#[derive(Args, Debug)]
pub struct BindingArgs {
    /// The user
    pub user: String,
    /// role, clusterrole, or role=clusterrole (a RoleBinding to a ClusterRole)
    #[arg(value_name = "role|role=clusterrole|clusterrole")]
    pub role_type: String,
    /// The Role or ClusterRole
    pub role: String,
    /// The RoleBinding or ClusterRoleBinding
    pub binding: String,
    /// Namespace of a RoleBinding
    pub namespace: Option<String>,
}

/// `role`, `role=clusterrole` or `clusterrole`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleType {
    Role,
    RoleClusterRole,
    ClusterRole,
}

/// A checked request: which binding, which role it must refer to, which user.
#[derive(Debug, Clone)]
pub struct Target {
    pub user: String,
    pub role_type: RoleType,
    pub role: String,
    pub binding: String,
    /// Some for RoleBindings, None for ClusterRoleBindings.
    pub namespace: Option<String>,
}

impl Target {
    /// Validates every name and the namespace rules before any request.
    pub fn parse(args: &BindingArgs) -> Result<Target, Error> {
        names::check_user(&args.user)?;
        let role_type = match args.role_type.as_str() {
            "role" => RoleType::Role,
            "role=clusterrole" => RoleType::RoleClusterRole,
            "clusterrole" => RoleType::ClusterRole,
            other => {
                return Err(Error::Invalid(msg!(
                    "invalid role type '{}': use role, role=clusterrole or clusterrole",
                    other.escape_debug()
                )));
            }
        };
        let role_what = if role_type == RoleType::Role {
            msg!("role")
        } else {
            msg!("cluster role")
        };
        names::check_path_segment(role_what, &args.role)?;
        names::check_path_segment(msg!("binding"), &args.binding)?;
        match (role_type, &args.namespace) {
            (RoleType::ClusterRole, Some(ns)) => {
                return Err(Error::Invalid(msg!(
                    "a namespace ('{}') does not apply to clusterrole: a ClusterRoleBinding is cluster-wide (use role=clusterrole for a RoleBinding in a namespace)",
                    ns.escape_debug()
                )));
            }
            (RoleType::Role | RoleType::RoleClusterRole, None) => {
                return Err(Error::Invalid(msg!(
                    "{} needs a namespace: a RoleBinding lives in one",
                    args.role_type
                )));
            }
            (_, Some(ns)) => names::check_namespace(ns)?,
            _ => {}
        }
        Ok(Target {
            user: args.user.clone(),
            role_type,
            role: args.role.clone(),
            binding: args.binding.clone(),
            namespace: args.namespace.clone(),
        })
    }

    /// `RoleBinding ns1/rb` or `ClusterRoleBinding crb`, for messages.
    pub fn binding_label(&self) -> Message {
        match &self.namespace {
            Some(ns) => msg!("RoleBinding '{}' in namespace '{ns}'", self.binding),
            None => msg!("ClusterRoleBinding '{}'", self.binding),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> BindingArgs {
        BindingArgs {
            user: v[0].into(),
            role_type: v[1].into(),
            role: v[2].into(),
            binding: v[3].into(),
            namespace: v.get(4).map(|s| s.to_string()),
        }
    }

    #[test]
    fn namespace_rules() {
        Target::parse(&args(&["alice", "role", "r", "rb", "ns1"])).unwrap();
        Target::parse(&args(&["alice", "role=clusterrole", "view", "rb", "ns1"])).unwrap();
        Target::parse(&args(&[
            "alice",
            "clusterrole",
            "system:auth-delegator",
            "crb",
        ]))
        .unwrap();
        for bad in [
            &["alice", "clusterrole", "view", "crb", "ns1"][..],
            &["alice", "role", "r", "rb"],
            &["alice", "role=clusterrole", "view", "rb"],
            &["alice", "Role", "r", "rb", "ns1"],
            &["alice", "role", "r", "rb", "NS"],
            &["alice", "role", "r/x", "rb", "ns1"],
            &["al ice", "role", "r", "rb", "ns1"],
        ] {
            assert!(Target::parse(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
