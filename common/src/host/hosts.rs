//! /etc/hosts: binding the podsec service names to the server's address, idempotently and
//! without ever adding a second, conflicting binding.

use std::net::IpAddr;

/// The names podsec binds to the registry and signature server.
const SERVICE_NAMES: [&str; 3] = ["registry.local", "sigstore.local", "trivy.local"];

#[derive(Debug, thiserror::Error, crate::i18n::Localize, PartialEq, Eq)]
pub enum HostsError {
    #[error(
        "{name} is already bound to {bound} in /etc/hosts (line {line}), not to {wanted}; remove that binding and run again"
    )]
    Conflict {
        name: String,
        bound: String,
        wanted: IpAddr,
        line: usize,
    },
}

/// The address each of `names` is bound to (first binding wins, as the resolver does),
/// ignoring comments.
pub fn bindings<'a>(text: &str, names: &[&'a str]) -> Vec<(&'a str, String, usize)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or_default();
        let mut fields = content.split_whitespace();
        let Some(address) = fields.next() else {
            continue;
        };
        for field in fields {
            if let Some(name) = names.iter().find(|n| n.eq_ignore_ascii_case(field))
                && !found.iter().any(|(n, _, _)| n == name)
            {
                found.push((*name, address.to_string(), number + 1));
            }
        }
    }
    found
}

/// The new /etc/hosts text binding every service name to `address`, or `None` when they all
/// already are. Any name bound to another address is a conflict and nothing changes.
pub fn bind_services(text: &str, address: IpAddr) -> Result<Option<String>, HostsError> {
    let existing = bindings(text, &SERVICE_NAMES);
    for (name, bound, line) in &existing {
        let same = bound.parse::<IpAddr>().is_ok_and(|b| b == address);
        if !same {
            return Err(HostsError::Conflict {
                name: name.to_string(),
                bound: bound.clone(),
                wanted: address,
                line: *line,
            });
        }
    }
    let missing: Vec<&str> = SERVICE_NAMES
        .iter()
        .copied()
        .filter(|name| !existing.iter().any(|(n, _, _)| n == name))
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let mut updated = text.to_string();
    if !updated.is_empty() && !updated.ends_with('\n') {
        updated.push('\n');
    }
    updated.push_str(&format!("{address} {}\n", missing.join(" ")));
    Ok(Some(updated))
}

/// The address `name` is bound to in `text`, if any.
pub fn address_of(text: &str, name: &str) -> Option<String> {
    bindings(text, &[name])
        .into_iter()
        .next()
        .map(|(_, address, _)| address)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "127.0.0.1 localhost\n# 10.0.0.9 registry.local\n";

    #[test]
    fn binds_once_then_is_idempotent() {
        let ip: IpAddr = "192.0.2.10".parse().unwrap();
        let text = bind_services(BASE, ip).unwrap().unwrap();
        assert!(
            text.ends_with("192.0.2.10 registry.local sigstore.local trivy.local\n"),
            "{text}"
        );
        assert_eq!(bind_services(&text, ip).unwrap(), None);
    }

    #[test]
    fn a_binding_to_another_address_is_a_conflict() {
        let text = format!("{BASE}10.0.0.1 sigstore.local\n");
        let err = bind_services(&text, "192.0.2.10".parse().unwrap()).unwrap_err();
        assert!(
            matches!(err, HostsError::Conflict { ref name, ref bound, line: 3, .. } if name == "sigstore.local" && bound == "10.0.0.1")
        );
    }

    #[test]
    fn partial_binding_to_the_same_address_is_completed() {
        let ip: IpAddr = "192.0.2.10".parse().unwrap();
        let text = format!("{BASE}192.0.2.10 registry.local\n");
        let updated = bind_services(&text, ip).unwrap().unwrap();
        assert!(updated.ends_with("192.0.2.10 sigstore.local trivy.local\n"));
        assert_eq!(
            address_of(&updated, "trivy.local").as_deref(),
            Some("192.0.2.10")
        );
    }
}
