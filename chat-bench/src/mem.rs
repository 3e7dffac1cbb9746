//! A process's resident memory, read from `/proc/PID/status`, and the CPU time it has
//! used, from `/proc/PID/stat` (Linux). Only reads.

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

/// Clock ticks per second of `/proc/PID/stat`'s times (`USER_HZ`, which Linux fixes at
/// 100 for user space on every architecture it runs on).
pub(crate) const TICKS_PER_SECOND: u64 = 100;

/// CPU time a process has used (user and system, all threads), in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {path} (is the server on this machine?)"))?;
    parse_cpu_ticks(&stat).with_context(|| format!("no CPU times in {path}"))
}

fn parse_cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    // The command name (field 2) may hold spaces and parentheses: count fields after
    // its closing parenthesis. Then state is field 3, utime 14 and stime 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("no command name")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> anyhow::Result<u64> {
        fields
            .get(n - 3)
            .context("too few fields")?
            .parse()
            .context("not a number")
    };
    Ok(field(14)? + field(15)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_parse_past_a_command_with_spaces() {
        let stat = "4242 (chat http (x)) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    1234 56 0 0 20 0 9 0 100 1000000 2000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat).unwrap(), 1290);
        assert!(parse_cpu_ticks("4242 (x) S 1").is_err());
        assert!(cpu_ticks(std::process::id()).is_ok());
    }

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
