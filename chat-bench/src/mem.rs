//! A process's resident memory, read from `/proc/PID/status` (Linux). Only reads.

use anyhow::{Context, bail};

/// Resident set size (`VmRSS`) of a process, in KiB.
pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {path} (is the server on this machine?)"))?;
    parse_vm_rss(&status).with_context(|| format!("no VmRSS line in {path}"))
}

fn parse_vm_rss(status: &str) -> anyhow::Result<u64> {
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kib = rest
                .trim()
                .strip_suffix("kB")
                .map(str::trim)
                .context("VmRSS is not in kB")?;
            return kib.parse().context("VmRSS is not a number");
        }
    }
    bail!("VmRSS missing")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_parses() {
        let status = "Name:\tchat-http\nVmPeak:\t 1000 kB\nVmRSS:\t   23456 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status).unwrap(), 23456);
        assert!(parse_vm_rss("Name: x\n").is_err());
    }

    #[test]
    fn this_process_has_a_resident_size() {
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }
}
