//! The arguments bindrole and unbindrole share.

use clap::Args;

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
