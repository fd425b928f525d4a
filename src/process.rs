//! What the `reelfs` process does around a command: stop at a safe point on
//! SIGINT/SIGTERM, and start a background mount by re-executing itself.

use anyhow::{Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Start `reelfs mount --foreground` as a detached child and wait until it
/// reports the mount ready (a byte on fd 3) or exits with an error, whose log
/// is then shown. Re-executing avoids fork() in a process that has threads.
pub fn mount_in_background(args: &[std::ffi::OsString], mountpoint: &std::path::Path) -> Result<i32> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("cannot find the reelfs executable")?;
    let log_path = std::env::temp_dir().join(format!("reelfs-mount-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let (mut rd, wr) = std::io::pipe().context("pipe")?;
    let wr_fd = std::os::fd::AsRawFd::as_raw_fd(&wr);
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args).arg("--foreground").env("REELFS_READY_FD", "3");
    cmd.stdin(std::process::Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::dup2(wr_fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start the mount process")?;
    drop(wr);
    let mut buf = [0u8; 1];
    let n = rd.read(&mut buf).unwrap_or(0);
    if n == 1 {
        println!("mounted at {} (pid {}, log {})", mountpoint.display(), child.id(), log_path.display());
        return Ok(0);
    }
    let status = child.wait()?;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    eprint!("{text}");
    Ok(status.code().unwrap_or(1).max(1))
}

pub fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let f = Arc::new(AtomicBool::new(false));
        let g = f.clone();
        // First Ctrl-C asks the operation to stop at a safe point; a second exits at once.
        let _ = ctrlc_like(move || {
            if g.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("reelfs: interrupted, stopping safely (Ctrl-C again to abort now)");
        });
        f
    })
    .clone()
}

/// Install a SIGINT/SIGTERM handler on a dedicated thread using signalfd-free
/// sigwait, so the handler may allocate and print.
fn ctrlc_like(f: impl Fn() + Send + 'static) -> std::io::Result<()> {
    // SAFETY: blocking signals in this thread before other threads start makes
    // them inherit the mask; sigwait then receives them synchronously.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        std::thread::spawn(move || loop {
            let mut sig: libc::c_int = 0;
            if libc::sigwait(&set, &mut sig) == 0 {
                f();
            }
        });
    }
    Ok(())
}
