//! The pflag-style command line of podsec-u7s-kubeadm: arguments are the input split at NUL
//! bytes; the parse gives an invocation or an error, and init and join give native arguments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podsec_k8s::u7s_kubeadm::flags::{Invocation, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let args: Vec<String> = text.split('\0').map(str::to_string).collect();
    match parse(&args) {
        Ok(Invocation::Init(flags)) => {
            let _ = flags.native_args();
        }
        Ok(Invocation::Join(flags)) => {
            let _ = flags.common.native_args();
        }
        Ok(_) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
