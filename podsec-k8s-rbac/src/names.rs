//! Name checks made before any request, so a bad argument never reaches the API server (or a
//! path, or the unbindCmd line).

use podsec_common::host::users::valid_account_name;
use podsec_common::i18n::Message;
use podsec_common::msg;

use crate::error::Error;

/// A user: a local account name, or a Kubernetes `system:` user bound by its full name
/// (upstream stripped the prefix and bound `kube-proxy` for `system:kube-proxy`).
pub fn check_user(user: &str) -> Result<(), Error> {
    let system_ok = user.strip_prefix("system:").is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 253
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".:_-".contains(c))
    });
    if valid_account_name(user) || system_ok {
        Ok(())
    } else {
        Err(Error::Invalid(msg!(
            "invalid user name '{user}': use a local account name (lower-case letters, digits, '_' and '-', starting with a letter or '_', at most 32 characters) or system:<name>"
        )))
    }
}

/// A local account (create-user, create-kubeconfig): no `system:` form.
pub fn check_account(user: &str) -> Result<(), Error> {
    if valid_account_name(user) {
        Ok(())
    } else {
        Err(Error::Invalid(msg!(
            "invalid user name '{user}': use lower-case letters, digits, '_' and '-', starting with a letter or '_', at most 32 characters"
        )))
    }
}

/// Role, ClusterRole, RoleBinding and ClusterRoleBinding names are path-segment names
/// (`system:auth-delegator` is one); `what` names the kind in the message.
pub fn check_path_segment(what: Message, name: &str) -> Result<(), Error> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.len() > 253
        || name.contains(['/', '%'])
        || name.chars().any(char::is_control);
    if bad {
        Err(Error::Invalid(msg!(
            "invalid {what} name '{}': it must be 1 to 253 characters without '/', '%' or control characters, and not '.' or '..'",
            name.escape_debug()
        )))
    } else {
        Ok(())
    }
}

/// Namespaces are DNS-1123 labels.
pub fn check_namespace(name: &str) -> Result<(), Error> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-';
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(msg!(
            "invalid namespace '{}': use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit",
            name.escape_debug()
        )))
    }
}

/// A group goes into an O= attribute (at most 64 characters by X.520); `system:` groups such
/// as `system:masters` give powers no podsec user should get by accident.
pub fn check_group(group: &str, allow_system: bool) -> Result<(), Error> {
    if group.is_empty() || group.chars().count() > 64 || group.chars().any(char::is_control) {
        return Err(Error::Invalid(msg!(
            "invalid group '{}': use 1 to 64 characters without control characters",
            group.escape_debug()
        )));
    }
    if group.starts_with("system:") && !allow_system {
        return Err(Error::Invalid(msg!(
            "refusing group '{group}': system: groups carry built-in powers; add --allow-system-groups if this is really meant"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        for good in ["alice", "u7s-admin", "system:kube-proxy", "system:node:n1"] {
            check_user(good).unwrap();
        }
        for bad in [
            "", "Alice", "system:", "a b", "-x", "system:A", "../x", "a;b",
        ] {
            assert!(check_user(bad).is_err(), "{bad}");
        }
        assert!(check_account("system:kube-proxy").is_err());
    }

    #[test]
    fn path_segments() {
        for good in ["view", "system:auth-delegator", "rb-view", "a.b"] {
            check_path_segment(msg!("role"), good).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a%2f", "a\nb"] {
            assert!(check_path_segment(msg!("role"), bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn namespaces() {
        for good in ["ns1", "kube-system", "a", &"a".repeat(63)] {
            check_namespace(good).unwrap();
        }
        for bad in ["", "-a", "a-", "A", "a.b", "a_b", &"a".repeat(64)] {
            assert!(check_namespace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn groups() {
        check_group("devs", false).unwrap();
        assert!(check_group("system:masters", false).is_err());
        check_group("system:masters", true).unwrap();
        assert!(check_group("", false).is_err());
        assert!(check_group(&"g".repeat(65), false).is_err());
    }
}
