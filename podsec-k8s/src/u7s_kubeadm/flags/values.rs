//! The syntax of flag values: addresses, ports, tokens, endpoints, repositories, durations.

use std::net::{IpAddr, Ipv4Addr};

use podsec_common::{msg, tr};

use super::error::{FlagError, Msgid, invalid};
use crate::u7s_kubeadm::network::{Ipv4Net, NetworkError};

pub(super) fn ipv4(flag: &'static str, v: &str) -> Result<Ipv4Addr, FlagError> {
    match v.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) if !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast() => Ok(a),
        Ok(IpAddr::V4(_)) => Err(invalid(flag, v, msg!("not a usable unicast address"))),
        Ok(IpAddr::V6(_)) => Err(invalid(
            flag,
            v,
            msg!("IPv6 is not supported by the rootless node network (slirp4netns with IPv4)"),
        )),
        Err(_) => Err(invalid(flag, v, msg!("an IPv4 address"))),
    }
}

pub(super) fn port(flag: &'static str, v: &str) -> Result<u16, FlagError> {
    v.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| invalid(flag, v, msg!("a port number from 1 to 65535")))
}

pub(super) fn cidr(flag: &'static str, v: &str) -> Result<Ipv4Net, FlagError> {
    Ipv4Net::parse_cluster(v).map_err(|e: NetworkError| invalid(flag, v, e))
}

/// `[a-z0-9]{6}.[a-z0-9]{16}`, kubeadm's bootstrap token format.
pub(super) fn bootstrap_token(flag: &'static str, v: &str) -> Result<String, FlagError> {
    let ok = v.split_once('.').is_some_and(|(id, secret)| {
        let class = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        };
        id.len() == 6 && secret.len() == 16 && class(id) && class(secret)
    });
    if ok {
        Ok(v.to_string())
    } else {
        Err(invalid(
            flag,
            tr!("(hidden)"),
            // Not msg!: the braces are text (the catalogue has it as printed).
            Msgid("a bootstrap token [a-z0-9]{6}.[a-z0-9]{16}"),
        ))
    }
}

/// HOST:PORT (or HOST alone when `port_required` is false), HOST an IPv4 address or DNS name.
pub(super) fn check_endpoint(
    flag: &'static str,
    v: &str,
    port_required: bool,
) -> Result<(), FlagError> {
    let (host, port_text) = match v.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (v, None),
    };
    let host_ok = host.parse::<Ipv4Addr>().is_ok() || is_dns_subdomain(host);
    let port_ok = match port_text {
        Some(p) => port(flag, p).is_ok(),
        None => !port_required,
    };
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(invalid(
            flag,
            v,
            msg!("HOST[:PORT] with an IPv4 address or DNS name"),
        ))
    }
}

pub(super) fn check_repository(flag: &'static str, v: &str) -> Result<(), FlagError> {
    let v = v.trim_end_matches('/');
    let mut parts = v.split('/');
    let host = parts.next().unwrap_or_default();
    let host_ok = {
        let (name, port_text) = match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        };
        (name.parse::<Ipv4Addr>().is_ok() || is_dns_subdomain(name) || name == "localhost")
            && port_text.is_none_or(|p| port(flag, p).is_ok())
    };
    let path_ok = parts.all(|p| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    });
    if host_ok && path_ok {
        Ok(())
    } else {
        Err(invalid(
            flag,
            v,
            msg!("REGISTRY[/PATH], e.g. registry.local/c10f"),
        ))
    }
}

pub(super) fn feature_gates(v: &str) -> Result<Vec<(String, bool)>, FlagError> {
    let mut gates: Vec<(String, bool)> = Vec::new();
    for item in v.split(',') {
        let (name, state) = item
            .split_once('=')
            .ok_or_else(|| invalid("feature-gates", v, msg!("NAME=true|false[,...]")))?;
        let state = match state.trim() {
            "true" => true,
            "false" => false,
            _ => return Err(invalid("feature-gates", v, msg!("NAME=true|false[,...]"))),
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid(
                "feature-gates",
                v,
                msg!("feature gate names are alphanumeric"),
            ));
        }
        gates.retain(|(n, _)| n != name);
        gates.push((name.to_string(), state));
    }
    Ok(gates)
}

/// RFC 1123 subdomain: lower-case labels of letters, digits and '-', dot-separated.
pub fn is_dns_subdomain(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

pub(super) fn is_wildcard_dns(v: &str) -> bool {
    v.strip_prefix("*.").is_some_and(is_dns_subdomain)
}

/// Go's time.ParseDuration syntax for whole units: `0`, `24h`, `1h30m`, `90s`, `1.5h`.
pub(super) fn is_go_duration(v: &str) -> bool {
    if v == "0" {
        return true;
    }
    let mut rest = v;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if digits == 0 || rest[..digits].matches('.').count() > 1 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "h", "m", "s"]
            .iter()
            .find(|u| rest.starts_with(*u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for good in ["0", "24h", "1h30m", "90s", "1.5h", "100ms"] {
            assert!(is_go_duration(good), "{good}");
        }
        for bad in ["", "h", "1d", "1 h", "-1h", "1..5h"] {
            assert!(!is_go_duration(bad), "{bad}");
        }
    }
}
