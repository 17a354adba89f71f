//! POSIX access ACLs of directories, read and written through an open descriptor as the
//! `system.posix_acl_access` extended attribute (the kernel's binary format, version 2: a
//! 4-byte header, then 8-byte entries of tag, permissions and id, sorted by tag then id).
//! The signature store and the registry's data takeover both need them; no path is followed.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

const ACL_ACCESS: &std::ffi::CStr = c"system.posix_acl_access";
const VERSION: u32 = 2;

pub const USER_OBJ: u16 = 0x01;
pub const USER: u16 = 0x02;
pub const GROUP_OBJ: u16 = 0x04;
pub const MASK: u16 = 0x10;
pub const OTHER: u16 = 0x20;
/// The id of the entries that have none (owner, group, mask, others).
pub const NO_ID: u32 = u32::MAX;

/// One entry: tag, permissions (rwx as 4, 2, 1), id.
pub type Entry = (u16, u16, u32);

/// The attribute's value for `entries`, which the caller gives in the kernel's order.
pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut bytes = VERSION.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        bytes.extend(tag.to_le_bytes());
        bytes.extend(perm.to_le_bytes());
        bytes.extend(id.to_le_bytes());
    }
    bytes
}

/// The entries of an attribute's value (a short or odd tail is ignored).
pub fn decode(value: &[u8]) -> Vec<Entry> {
    value
        .get(4..)
        .unwrap_or_default()
        .chunks_exact(8)
        .map(|e| {
            (
                u16::from_le_bytes([e[0], e[1]]),
                u16::from_le_bytes([e[2], e[3]]),
                u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            )
        })
        .collect()
}

/// The size of the directory's ACL value; `ENODATA` when it has none, `EOPNOTSUPP` when its
/// file system keeps no ACLs.
pub fn size(dir: BorrowedFd) -> Result<usize, Errno> {
    // SAFETY: a size query (null buffer, length 0) on a valid descriptor and NUL-terminated name.
    let result = unsafe {
        nix::libc::fgetxattr(
            dir.as_raw_fd(),
            ACL_ACCESS.as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    Errno::result(result).map(|n| n as usize)
}

/// The directory's ACL value (errors as [`size`]).
pub fn get(dir: BorrowedFd) -> Result<Vec<u8>, Errno> {
    let mut value = vec![0u8; size(dir)?];
    // SAFETY: a valid descriptor, a NUL-terminated name and a buffer of the given length.
    let read = unsafe {
        nix::libc::fgetxattr(
            dir.as_raw_fd(),
            ACL_ACCESS.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    value.truncate(Errno::result(read)? as usize);
    Ok(value)
}

pub fn set(dir: BorrowedFd, value: &[u8]) -> Result<(), Errno> {
    // SAFETY: a valid descriptor, a NUL-terminated name and a buffer of the given length.
    let result = unsafe {
        nix::libc::fsetxattr(
            dir.as_raw_fd(),
            ACL_ACCESS.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(result).map(drop)
}

pub fn remove(dir: BorrowedFd) -> Result<(), Errno> {
    // SAFETY: a valid descriptor and a NUL-terminated name.
    let result = unsafe { nix::libc::fremovexattr(dir.as_raw_fd(), ACL_ACCESS.as_ptr()) };
    Errno::result(result).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_encoding() {
        let entries = [(USER_OBJ, 7, NO_ID), (USER, 1, 105), (OTHER, 5, NO_ID)];
        let value = encode(&entries);
        assert_eq!(value.len(), 4 + 3 * 8);
        assert_eq!(&value[..4], &[2, 0, 0, 0]);
        assert_eq!(decode(&value), entries);
        assert_eq!(decode(&value[..7]), Vec::<Entry>::new());
    }
}
