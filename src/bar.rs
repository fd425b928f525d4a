//! Progress drawn on the terminal: the binary's `Progress` (archive/progress.rs),
//! an indicatif bar per phase on stderr.

use indicatif::{ProgressBar, ProgressStyle};
use reelfs::archive::progress::{Progress, ProgressHandle, Unit};
use std::sync::Mutex;

#[derive(Default)]
pub struct TerminalBar {
    bar: Mutex<Option<ProgressBar>>,
}

/// A bar on stderr when it is a terminal (and `wanted`); otherwise nothing.
pub fn handle(wanted: bool) -> ProgressHandle {
    if wanted && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressHandle::new(TerminalBar::default())
    } else {
        ProgressHandle::none()
    }
}

impl TerminalBar {
    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(pb) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            f(pb)
        }
    }
}

impl Progress for TerminalBar {
    fn begin(&self, phase: &str, unit: Unit, total: u64) {
        let counts = match unit {
            Unit::Bytes => "{bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            Unit::Frames => "{pos}/{len} frames {per_sec} ETA {eta}",
            Unit::Items => "{pos}/{len}",
        };
        let template = format!("{{spinner}} {phase} [{{bar:30}}] {counts} {{wide_msg}}");
        let pb = ProgressBar::new(total.max(1));
        pb.set_style(ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()));
        if let Some(old) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).replace(pb) {
            old.finish_and_clear();
        }
    }
    fn advance(&self, n: u64) {
        self.with(|pb| pb.inc(n));
    }
    fn set_done(&self, done: u64) {
        self.with(|pb| pb.set_position(done));
    }
    fn files(&self, done: u64, total: u64) {
        self.with(|pb| pb.set_message(format!("files {done}/{total}")));
    }
    fn message(&self, msg: &str) {
        let msg = msg.to_string();
        self.with(|pb| pb.set_message(msg));
    }
    fn finish(&self) {
        if let Some(pb) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            pb.finish_and_clear();
        }
    }
    fn suspend(&self, f: &mut dyn FnMut()) {
        let bar = self.bar.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match bar {
            Some(pb) => pb.suspend(f),
            None => f(),
        }
    }
}
