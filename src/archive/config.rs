//! `reelfs.toml`: the archive's format version and the parameters that must stay
//! fixed for its life (changing chunker parameters would defeat dedup against
//! everything already stored).

use super::error::{ArchiveError, IoContext, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The on-disk format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub format_version: u32,
    pub chunker: ChunkerConfig,
    pub compression: CompressionConfig,
    pub packs: PackConfig,
    /// Derived data under cache/; absent in archives made before it existed.
    #[serde(default)]
    pub cache: CacheConfig,
    /// Where the packs live when not in `packs/` (an S3 bucket); absent: local.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<super::store::StoreConfig>,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheConfig {
    /// Most bytes of remuxed slices kept in cache/slices (least recently used go
    /// first). Written as bytes or with a unit: 10G, 512M.
    #[serde(with = "byte_size")]
    pub remux_limit: u64,
}

/// 10 GiB holds minutes of camera-original MXF slices while staying small next
/// to the archive itself; a mount can override it (--remux-cache-limit).
pub const DEFAULT_REMUX_LIMIT: u64 = 10 << 30;

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { remux_limit: DEFAULT_REMUX_LIMIT }
    }
}

/// Sizes in reelfs.toml: an integer of bytes or a string with a unit (K, M, G, T;
/// powers of 1024), so a hand edit can say "512M".
pub mod byte_size {
    use serde::{de, Deserializer, Serializer};

    pub fn parse(s: &str) -> Result<u64, String> {
        let t = s.trim();
        let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let bad = || format!("'{s}' is not a size: write bytes or a number with K, M, G or T, like 512M or 10G");
        let n: u64 = num.trim().parse().map_err(|_| bad())?;
        let mult: u64 = match unit.to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
            "" => 1,
            "K" => 1 << 10,
            "M" => 1 << 20,
            "G" => 1 << 30,
            "T" => 1 << 40,
            _ => return Err(bad()),
        };
        n.checked_mul(mult).ok_or_else(|| format!("'{s}' is too large"))
    }

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        for (unit, m) in [("T", 1u64 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)] {
            if *v >= m && v.is_multiple_of(m) {
                return s.serialize_str(&format!("{}{unit}", v / m));
            }
        }
        s.serialize_u64(*v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = u64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a size in bytes or a string like \"512M\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
                Ok(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
                u64::try_from(v).map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
                parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            format_version: FORMAT_VERSION,
            chunker: ChunkerConfig { min_size: 1 << 20, avg_size: 4 << 20, max_size: 16 << 20, seed: 0 },
            compression: CompressionConfig { policy: CompressionPolicy::Auto, level: 3 },
            packs: PackConfig { target_size: 512 << 20 },
            cache: CacheConfig::default(),
            store: None,
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
        let v: VersionOnly = toml::from_str(&text).map_err(|e| ArchiveError::Config { path: path.into(), msg: e.to_string() })?;
        if v.format_version > FORMAT_VERSION {
            return Err(ArchiveError::NewerFormat {
                path: path.parent().unwrap_or(path).into(),
                found: v.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let cfg: Config = toml::from_str(&text).map_err(|e| ArchiveError::Config { path: path.into(), msg: e.to_string() })?;
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
        if self.cache.remux_limit < (1 << 20) {
            return Err("cache.remux_limit must be at least 1M".into());
        }
        Ok(())
    }

    pub fn to_toml(&self) -> std::result::Result<String, String> {
        let body = toml::to_string_pretty(self).map_err(|e| e.to_string())?;
        Ok(format!(
            "# reelfs archive configuration. format_version and [chunker] are fixed for the\n\
             # life of the archive; [compression], [packs] and [cache] may be changed.\n{body}"
        ))
    }
}

#[cfg(test)]
mod cache_limit_tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units_and_refuse_nonsense() {
        assert_eq!(byte_size::parse("10G").unwrap(), 10 << 30);
        assert_eq!(byte_size::parse("512M").unwrap(), 512 << 20);
        assert_eq!(byte_size::parse("2gib").unwrap(), 2 << 30);
        assert_eq!(byte_size::parse("4096").unwrap(), 4096);
        for bad in ["lots", "", "-1G", "1.5G", "3X", "99999999999T"] {
            assert!(byte_size::parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn archives_without_a_cache_section_get_the_default_and_new_ones_write_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reelfs.toml");
        let text = Config::default().to_toml().unwrap();
        assert!(text.contains("remux_limit = \"10G\""), "{text}");
        let old = text.split("\n[cache]").next().unwrap().to_string() + "\n";
        std::fs::write(&path, &old).unwrap();
        assert_eq!(Config::load(&path).unwrap().cache.remux_limit, DEFAULT_REMUX_LIMIT);
        std::fs::write(&path, format!("{old}[cache]\nremux_limit = 3221225472\n")).unwrap();
        assert_eq!(Config::load(&path).unwrap().cache.remux_limit, 3 << 30);
        std::fs::write(&path, format!("{old}[cache]\nremux_limit = \"1K\"\n")).unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(e.contains("cache.remux_limit must be at least 1M"), "{e}");
    }
}
