//! Work shared by processes on several hosts (proxy workers rendering one
//! archive's media): before a process starts a piece of work it claims its
//! key, so no piece is done twice. A claim is released when the work fails or
//! the process drops it, and expires when the process dies; once the work is
//! stored it is finished, and stays claimed by its finisher.
//!
//! The seam only: a bucket implements it (store/queue.rs); the proxy run uses
//! it without knowing where the claims live.

use super::error::Result;

pub trait WorkClaims: Send + Sync {
    /// Claim `key` for this process, or say who has it.
    fn claim(&self, key: &str) -> Result<Claimed>;
}

pub enum Claimed {
    /// This process does the work; finish the ticket once it is stored.
    Mine(Box<dyn ClaimTicket>),
    /// Done, or being done, by another process (the text says who, for the report).
    Elsewhere(String),
}

pub trait ClaimTicket: Send {
    /// The work is stored: nobody needs to do it again.
    fn finish(self: Box<Self>) -> Result<()>;
    /// Asked just before the work is stored: whether the claim is still this
    /// process's (renewed if so). A process stalled past the claim's life (a
    /// paused VM, a stopped process) may have lost it to another worker,
    /// which then does the same work: `false` means store nothing.
    fn still_mine(&mut self) -> Result<bool>;
}
