//! Kernel settings through /proc/sys (no `sysctl` process). The files under
//! /proc/sys/net belong to the network namespace of the thread that opens
//! them, like our netlink sockets.

use std::{fs, io, path::Path};

/// Why a sysctl could not be written.
#[derive(Debug, thiserror::Error)]
#[error("sysctl {name}={value}: {source}")]
pub struct SysctlError {
    pub name: String,
    pub value: String,
    #[source]
    pub source: io::Error,
}

/// Sets a sysctl given by its dotted name (`net.ipv4.vs.conntrack`). Writes
/// only when the value differs, so a no-op sync does not touch the kernel.
pub fn set_sysctl(name: &str, value: &str) -> Result<(), SysctlError> {
    let path = Path::new("/proc/sys").join(name.replace('.', "/"));
    let fail = |source| SysctlError {
        name: name.to_owned(),
        value: value.to_owned(),
        source,
    };
    match fs::read_to_string(&path) {
        Ok(current) if current.trim() == value => Ok(()),
        _ => fs::write(&path, value).map_err(fail),
    }
}

/// Reads a sysctl given by its dotted name.
pub fn get_sysctl(name: &str) -> io::Result<String> {
    let path = Path::new("/proc/sys").join(name.replace('.', "/"));
    Ok(fs::read_to_string(path)?.trim().to_owned())
}

/// Raises a kernel module parameter (`/sys/module/MODULE/parameters/NAME`)
/// to at least `at_least`; a larger value is left alone. Returns whether it
/// wrote. kube-proxy sizes nf_conntrack's `hashsize` this way.
pub fn raise_module_parameter(
    module: &str,
    parameter: &str,
    at_least: u64,
) -> Result<bool, SysctlError> {
    let path = Path::new("/sys/module")
        .join(module)
        .join("parameters")
        .join(parameter);
    let fail = |source| SysctlError {
        name: path.display().to_string(),
        value: at_least.to_string(),
        source,
    };
    let current = fs::read_to_string(&path).map_err(fail)?;
    let current: u64 = current.trim().parse().map_err(|_| {
        fail(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("holds {:?}, not a number", current.trim()),
        ))
    })?;
    if current >= at_least {
        return Ok(false);
    }
    fs::write(&path, at_least.to_string()).map_err(fail)?;
    Ok(true)
}
