//! Local-time stamps in upstream's `%Y-%m-%d_%H:%M:%S` form (the suffix of policy_<stamp>).

use std::time::{SystemTime, UNIX_EPOCH};

/// Broken-down local time of `time`.
pub fn local(time: SystemTime) -> nix::libc::tm {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as nix::libc::time_t)
        .unwrap_or(0);
    // SAFETY: an all-zero tm is a valid value; localtime_r only writes into the one we own.
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    unsafe { nix::libc::localtime_r(&secs, &mut tm) };
    tm
}

/// `2025-01-31_23:59:58`
pub fn stamp(time: SystemTime) -> String {
    let tm = local(time);
    format!(
        "{:04}-{:02}-{:02}_{:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_has_the_upstream_shape() {
        let text = stamp(SystemTime::now());
        assert_eq!(text.len(), 19, "{text}");
        let bytes = text.as_bytes();
        assert_eq!(
            (bytes[4], bytes[7], bytes[10], bytes[13], bytes[16]),
            (b'-', b'-', b'_', b':', b':')
        );
    }
}
