//! How long operations (ingest, restore, check --deep, gc, proxy renders) say how
//! far they are, without the library drawing anything.
//!
//! The library reports events through [`Progress`]; the `reelfs` binary draws them
//! with indicatif, the Python bindings will hand them to a callback, tests count
//! them. Every method has a do-nothing default so an implementation picks what it
//! shows, and [`NoProgress`] (the default of every options struct) ignores them all.
//! Calls may come from worker threads, hence `Send + Sync`.

use std::sync::{Arc, Mutex};

/// What a phase counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Bytes,
    Frames,
    /// Whole things: packs checked, packs rewritten, files.
    Items,
}

pub trait Progress: Send + Sync {
    /// A phase starts (`"ingest"`, `"restore"`, `"check"`, `"gc"`, `"proxy"`):
    /// `total` units of `unit` are expected (0 when unknown).
    fn begin(&self, _phase: &str, _unit: Unit, _total: u64) {}
    /// `n` more units are done.
    fn advance(&self, _n: u64) {}
    /// `done` units are done in all (for counts kept elsewhere, such as frames
    /// rendered by worker threads).
    fn set_done(&self, _done: u64) {}
    /// Files (or sources) finished so far, of how many.
    fn files(&self, _done: u64, _total: u64) {}
    /// What is being worked on now, usually a path.
    fn message(&self, _msg: &str) {}
    /// The phase is over (also after an error or an interrupt).
    fn finish(&self) {}
    /// Run `f`, which prints a line, without tearing a drawn progress bar.
    fn suspend(&self, f: &mut dyn FnMut()) {
        f()
    }
}

/// Ignores every report.
pub struct NoProgress;

impl Progress for NoProgress {}

/// A shareable reporter, as options structs hold it: cloning shares the same
/// implementation (proxy workers report from several threads).
#[derive(Clone)]
pub struct ProgressHandle(Arc<dyn Progress>);

impl ProgressHandle {
    pub fn new(p: impl Progress + 'static) -> Self {
        ProgressHandle(Arc::new(p))
    }

    /// Reports nowhere.
    pub fn none() -> Self {
        ProgressHandle::new(NoProgress)
    }
}

impl Default for ProgressHandle {
    fn default() -> Self {
        ProgressHandle::none()
    }
}

impl std::fmt::Debug for ProgressHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHandle")
    }
}

impl std::ops::Deref for ProgressHandle {
    type Target = dyn Progress;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// Where a phase is, as one value: what a callback (the Python bindings) or a
/// test wants rather than separate events.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProgressState {
    pub phase: String,
    pub unit: Option<Unit>,
    pub done: u64,
    pub total: u64,
    pub files_done: u64,
    pub files_total: u64,
    pub message: String,
    pub finished: bool,
}

/// Keeps a [`ProgressState`] up to date and hands it to `f` after every event.
pub struct StateCallback<F: Fn(&ProgressState) + Send + Sync> {
    state: Mutex<ProgressState>,
    f: F,
}

impl<F: Fn(&ProgressState) + Send + Sync> StateCallback<F> {
    pub fn new(f: F) -> Self {
        StateCallback { state: Mutex::new(ProgressState::default()), f }
    }

    fn update(&self, change: impl FnOnce(&mut ProgressState)) {
        // A callback that panicked poisons the lock; the state is still whole.
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut s);
        let snapshot = s.clone();
        drop(s);
        (self.f)(&snapshot);
    }
}

impl<F: Fn(&ProgressState) + Send + Sync> Progress for StateCallback<F> {
    fn begin(&self, phase: &str, unit: Unit, total: u64) {
        self.update(|s| *s = ProgressState { phase: phase.to_string(), unit: Some(unit), total, ..Default::default() });
    }
    fn advance(&self, n: u64) {
        self.update(|s| s.done += n);
    }
    fn set_done(&self, done: u64) {
        self.update(|s| s.done = done);
    }
    fn files(&self, done: u64, total: u64) {
        self.update(|s| {
            s.files_done = done;
            s.files_total = total;
        });
    }
    fn message(&self, msg: &str) {
        self.update(|s| s.message = msg.to_string());
    }
    fn finish(&self) {
        self.update(|s| s.finished = true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_callback_accumulates_events_into_one_state() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let p = ProgressHandle::new(StateCallback::new(move |st: &ProgressState| s2.lock().unwrap().push(st.clone())));
        p.begin("restore", Unit::Bytes, 100);
        p.message("a.mov");
        p.advance(40);
        p.advance(60);
        p.files(1, 1);
        p.finish();
        let seen = seen.lock().unwrap();
        let last = seen.last().unwrap();
        assert_eq!(last.phase, "restore");
        assert_eq!((last.done, last.total), (100, 100));
        assert_eq!((last.files_done, last.files_total), (1, 1));
        assert_eq!(last.message, "a.mov");
        assert!(last.finished);
        assert_eq!(seen.len(), 6);
    }
}
