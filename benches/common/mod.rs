//! Helpers shared by the bench binaries (each includes this file as `mod common;`).

/// CPU time of `clock` so far, in ns: `CLOCK_PROCESS_CPUTIME_ID` (every thread of this process, the running
/// ones up to now) or `CLOCK_THREAD_CPUTIME_ID` (the calling thread). Exact, where `/proc/*/schedstat` lags
/// up to a scheduler tick for a running thread. 0 where the clock is unavailable.
pub fn cpu_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, which lives for the call.
    let ok = unsafe { libc::clock_gettime(clock, &mut ts) } == 0;
    if !ok {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// The 1-minute load average, when `/proc/loadavg` can be read.
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
