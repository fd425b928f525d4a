//! `reelfs.toml`: the archive's format version and the parameters that must stay
//! fixed for its life (changing chunker parameters would defeat dedup against
//! everything already stored).

use super::error::{ArchiveError, IoContext, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The on-disk format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub format_version: u32,
    pub chunker: ChunkerConfig,
    pub compression: CompressionConfig,
    pub packs: PackConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkerConfig {
    /// FastCDC 2020 parameters in bytes. DESIGN.md: min 1 MiB, average 4 MiB, max 16 MiB,
    /// which keeps a 1 TB file at ~250k chunks (catalog rows) while an edit touches ~4 MiB.
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
    /// Gear-table seed; a per-archive seed stops chunk boundaries leaking content.
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CompressionPolicy {
    /// Compress a chunk only when a quick probe of a sample says it pays.
    Auto,
    Never,
    Always,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompressionConfig {
    pub policy: CompressionPolicy,
    pub level: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackConfig {
    /// A pack is sealed once it passes this size.
    pub target_size: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            format_version: FORMAT_VERSION,
            chunker: ChunkerConfig {
                min_size: 1 << 20,
                avg_size: 4 << 20,
                max_size: 16 << 20,
                seed: 0,
            },
            compression: CompressionConfig { policy: CompressionPolicy::Auto, level: 3 },
            packs: PackConfig { target_size: 512 << 20 },
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).at(path)?;
        // Read the version first so a newer archive is reported as such rather than
        // as a parse error of fields this build does not know.
        #[derive(Deserialize)]
        struct VersionOnly {
            format_version: u32,
        }
        let v: VersionOnly = toml::from_str(&text)
            .map_err(|e| ArchiveError::Config { path: path.into(), msg: e.to_string() })?;
        if v.format_version > FORMAT_VERSION {
            return Err(ArchiveError::NewerFormat {
                path: path.parent().unwrap_or(path).into(),
                found: v.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let cfg: Config = toml::from_str(&text)
            .map_err(|e| ArchiveError::Config { path: path.into(), msg: e.to_string() })?;
        cfg.validate().map_err(|msg| ArchiveError::Config { path: path.into(), msg })?;
        Ok(cfg)
    }

    /// fastcdc asserts on out-of-range sizes; check them here so a hand-edited
    /// config is an error, not a panic.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let c = &self.chunker;
        if !(64..=(1 << 20)).contains(&c.min_size) {
            return Err(format!("chunker.min_size {} must be 64..=1048576", c.min_size));
        }
        if !(256..=(4 << 20)).contains(&c.avg_size) {
            return Err(format!("chunker.avg_size {} must be 256..=4194304", c.avg_size));
        }
        if !(1024..=(16 << 20)).contains(&c.max_size) {
            return Err(format!("chunker.max_size {} must be 1024..=16777216", c.max_size));
        }
        if !(c.min_size <= c.avg_size && c.avg_size <= c.max_size) {
            return Err("chunker sizes must satisfy min <= avg <= max".into());
        }
        if !(1..=19).contains(&self.compression.level) {
            return Err("compression.level must be 1..=19".into());
        }
        if self.packs.target_size < (1 << 20) {
            return Err("packs.target_size must be at least 1 MiB".into());
        }
        Ok(())
    }

    pub fn to_toml(&self) -> std::result::Result<String, String> {
        let body = toml::to_string_pretty(self).map_err(|e| e.to_string())?;
        Ok(format!(
            "# reelfs archive configuration. format_version and [chunker] are fixed for the\n\
             # life of the archive; [compression] and [packs] may be changed.\n{body}"
        ))
    }
}
