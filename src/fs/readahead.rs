//! Read-ahead for the mount's sequential readers: the read layer's component
//! (`archive::readahead`: sequential detection, window growth, back-pressure,
//! a byte-bounded cache) over the archive's chunk store.

pub use crate::archive::readahead::{ReadAheadConfig, Sequential};

/// The mount's prefetcher: loads verified chunks into its own bounded cache.
pub type Prefetcher = crate::archive::readahead::Prefetcher<crate::archive::read::ChunkStore>;
