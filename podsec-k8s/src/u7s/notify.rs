//! sd_notify(3): tell systemd a `Type=notify` unit is ready (a datagram to `$NOTIFY_SOCKET`).

use std::os::unix::net::UnixDatagram;

/// Sends `READY=1` when run by systemd; a no-op otherwise.
pub fn ready() -> std::io::Result<()> {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let socket = socket.to_string_lossy().into_owned();
    let sender = UnixDatagram::unbound()?;
    if let Some(name) = socket.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sender.send_to_addr(b"READY=1", &address)?;
    } else {
        sender.send_to(b"READY=1", &socket)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ready_reaches_the_socket_systemd_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        // SAFETY: tests of this module do not read the environment concurrently.
        unsafe { std::env::set_var("NOTIFY_SOCKET", &path) };
        super::ready().unwrap();
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        let mut buffer = [0u8; 64];
        let n = receiver.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..n], b"READY=1");
    }
}
