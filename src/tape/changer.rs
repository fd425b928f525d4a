//! Tape libraries: a media changer moves cartridges between storage slots and
//! a drive, by barcode. `tape write/verify/recall --changer DEV` ask it for the
//! cartridge they need, and `tape write` for the next one when a cartridge is
//! full.
//!
//! Two implementations behind one trait:
//! - `FileLibrary`: a folder emulating a library for emulated cartridges:
//!   `LIB/slots/NNN/BARCODE/` is a cartridge (as `reelfs tape format --device`
//!   makes it) in storage slot NNN, `LIB/drive0/BARCODE/` the one loaded; a
//!   load is a rename, so a cartridge is in exactly one place at any moment.
//! - `MtxChanger`: a SCSI media changer (`/dev/sgN`) driven through the `mtx`
//!   tool (`mtx -f DEV status|load|unload`), as backup software does. It is
//!   compiled and its status parser tested on `mtx` output, but it has not run
//!   against a real library here (none is attached to the build machine).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ChangerError {
    #[error("no cartridge {barcode} in the library ({what}); put it in a free slot (the import/export slot of a real library) and run the command again")]
    NotInLibrary { barcode: String, what: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

type Result<T> = std::result::Result<T, ChangerError>;

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ChangerError {
    let context = context.into();
    move |source| ChangerError::Io { context, source }
}

/// What the library holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Inventory {
    /// (slot number, barcode of the cartridge in it).
    pub slots: Vec<(u32, Option<String>)>,
    /// The barcode in the drive and the slot it came from.
    pub drive: Option<(String, Option<u32>)>,
}

impl Inventory {
    fn describe(&self) -> String {
        let full: Vec<String> = self.slots.iter().filter_map(|(n, b)| b.as_ref().map(|b| format!("slot {n}: {b}"))).collect();
        let drive = self.drive.as_ref().map_or("drive empty".to_string(), |(b, _)| format!("drive: {b}"));
        if full.is_empty() {
            format!("no cartridges in the slots, {drive}")
        } else {
            format!("{}; {drive}", full.join(", "))
        }
    }
}

pub trait MediaChanger {
    fn inventory(&mut self) -> Result<Inventory>;
    /// Put `barcode` in the drive (returning what was there to its slot first)
    /// and return the device path to read or write it through.
    fn load(&mut self, barcode: &str) -> Result<PathBuf>;
    /// Return the cartridge in the drive to its slot.
    fn unload(&mut self) -> Result<()>;
}

/// `--changer PATH`: a folder is an emulated library, anything else a SCSI
/// changer driven by `mtx`, whose drive is `--device`.
pub fn open(changer: &Path, device: Option<&Path>) -> Result<Box<dyn MediaChanger>> {
    if changer.is_dir() {
        if device.is_some() {
            return Err(ChangerError::Invalid(format!(
                "{} is an emulated library: its drive is {}/drive0; leave out --device",
                changer.display(),
                changer.display()
            )));
        }
        return Ok(Box::new(FileLibrary::open(changer)?));
    }
    let Some(drive) = device else {
        return Err(ChangerError::Invalid(format!(
            "with a SCSI changer ({}), say which drive it loads: --device /dev/nst0",
            changer.display()
        )));
    };
    Ok(Box::new(MtxChanger { changer: changer.to_path_buf(), drive: drive.to_path_buf(), drive_number: 0 }))
}

pub struct FileLibrary {
    root: PathBuf,
}

const FROM_SLOT: &str = ".from-slot";

impl FileLibrary {
    pub fn open(root: &Path) -> Result<FileLibrary> {
        if !root.join("slots").is_dir() {
            return Err(ChangerError::Invalid(format!(
                "{} is not an emulated library: it needs a slots/ folder (slots/001/BARCODE/ holds a cartridge made by `reelfs tape format --device`)",
                root.display()
            )));
        }
        std::fs::create_dir_all(root.join("drive0")).map_err(io(format!("creating {}/drive0", root.display())))?;
        Ok(FileLibrary { root: root.to_path_buf() })
    }

    fn drive(&self) -> PathBuf {
        self.root.join("drive0")
    }

    /// Barcodes are plain names; anything else in the folders is not a cartridge.
    fn cartridge_in(dir: &Path) -> Result<Option<String>> {
        let mut found = None;
        for e in std::fs::read_dir(dir).map_err(io(format!("reading {}", dir.display())))? {
            let e = e.map_err(io(format!("reading {}", dir.display())))?;
            let name = e.file_name().to_string_lossy().to_string();
            if e.path().is_dir() && !name.starts_with('.') {
                if found.is_some() {
                    return Err(ChangerError::Invalid(format!("{} holds more than one cartridge", dir.display())));
                }
                found = Some(name);
            }
        }
        Ok(found)
    }
}

impl MediaChanger for FileLibrary {
    fn inventory(&mut self) -> Result<Inventory> {
        let mut slots = Vec::new();
        let dir = self.root.join("slots");
        for e in std::fs::read_dir(&dir).map_err(io(format!("reading {}", dir.display())))? {
            let e = e.map_err(io(format!("reading {}", dir.display())))?;
            let Ok(n) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
            if e.path().is_dir() {
                slots.push((n, Self::cartridge_in(&e.path())?));
            }
        }
        slots.sort();
        let drive = match Self::cartridge_in(&self.drive())? {
            Some(b) => {
                let from = std::fs::read_to_string(self.drive().join(FROM_SLOT)).ok().and_then(|s| s.trim().parse().ok());
                Some((b, from))
            }
            None => None,
        };
        Ok(Inventory { slots, drive })
    }

    fn load(&mut self, barcode: &str) -> Result<PathBuf> {
        let inv = self.inventory()?;
        if let Some((b, _)) = &inv.drive {
            if b == barcode {
                return Ok(self.drive().join(barcode));
            }
            self.unload()?;
        }
        let Some((slot, _)) = inv.slots.iter().find(|(_, b)| b.as_deref() == Some(barcode)) else {
            return Err(ChangerError::NotInLibrary { barcode: barcode.into(), what: inv.describe() });
        };
        let from = self.root.join("slots").join(format!("{slot:03}")).join(barcode);
        let to = self.drive().join(barcode);
        std::fs::write(self.drive().join(FROM_SLOT), slot.to_string()).map_err(io(format!("writing {}", self.drive().display())))?;
        std::fs::rename(&from, &to).map_err(io(format!("loading {} into {}", from.display(), self.drive().display())))?;
        log::info!("changer {}: loaded {barcode} from slot {slot}", self.root.display());
        Ok(to)
    }

    fn unload(&mut self) -> Result<()> {
        let Some(barcode) = Self::cartridge_in(&self.drive())? else { return Ok(()) };
        let inv = self.inventory()?;
        let home = inv.drive.as_ref().and_then(|(_, s)| *s);
        // Back to the slot it came from; a cartridge put in the drive by hand
        // goes to the first empty slot.
        let slot = match home {
            Some(s) if inv.slots.iter().any(|(n, b)| *n == s && b.is_none()) => s,
            _ => inv
                .slots
                .iter()
                .find(|(_, b)| b.is_none())
                .map(|(n, _)| *n)
                .ok_or_else(|| ChangerError::Invalid(format!("no empty slot to unload {barcode} into: {}", inv.describe())))?,
        };
        let to = self.root.join("slots").join(format!("{slot:03}")).join(&barcode);
        std::fs::rename(self.drive().join(&barcode), &to).map_err(io(format!("unloading {barcode} to slot {slot}")))?;
        let _ = std::fs::remove_file(self.drive().join(FROM_SLOT));
        log::info!("changer {}: unloaded {barcode} to slot {slot}", self.root.display());
        Ok(())
    }
}

/// A SCSI media changer through `mtx` (compiled, untested without hardware).
pub struct MtxChanger {
    changer: PathBuf,
    drive: PathBuf,
    drive_number: u32,
}

impl MtxChanger {
    fn mtx(&self, args: &[String]) -> Result<String> {
        let out = std::process::Command::new("mtx").arg("-f").arg(&self.changer).args(args).output().map_err(io(format!(
            "running `mtx -f {} {}` (install the mtx package)",
            self.changer.display(),
            args.join(" ")
        )))?;
        if !out.status.success() {
            return Err(ChangerError::Invalid(format!(
                "`mtx -f {} {}` failed: {}",
                self.changer.display(),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl MediaChanger for MtxChanger {
    fn inventory(&mut self) -> Result<Inventory> {
        Ok(parse_mtx_status(&self.mtx(&["status".into()])?, self.drive_number))
    }

    fn load(&mut self, barcode: &str) -> Result<PathBuf> {
        let inv = self.inventory()?;
        if let Some((b, _)) = &inv.drive {
            if b == barcode {
                return Ok(self.drive.clone());
            }
            self.unload()?;
        }
        let Some((slot, _)) = inv.slots.iter().find(|(_, b)| b.as_deref() == Some(barcode)) else {
            return Err(ChangerError::NotInLibrary { barcode: barcode.into(), what: inv.describe() });
        };
        self.mtx(&["load".into(), slot.to_string(), self.drive_number.to_string()])?;
        Ok(self.drive.clone())
    }

    fn unload(&mut self) -> Result<()> {
        let inv = self.inventory()?;
        let Some((_, from)) = inv.drive else { return Ok(()) };
        let mut args = vec!["unload".to_string()];
        if let Some(s) = from {
            args.push(s.to_string());
            args.push(self.drive_number.to_string());
        }
        self.mtx(&args).map(|_| ())
    }
}

/// `mtx status` as mtx 1.3 prints it:
/// `Data Transfer Element 0:Full (Storage Element 3 Loaded):VolumeTag = A00003L8`,
/// `      Storage Element 1:Full :VolumeTag=A00001L8`, `Storage Element 2:Empty`,
/// `Storage Element 24 IMPORT/EXPORT:Full :VolumeTag=CLN001L1`.
pub fn parse_mtx_status(text: &str, drive: u32) -> Inventory {
    let tag = |line: &str| {
        line.split_once("VolumeTag").map(|(_, t)| t.trim_start_matches([' ', '=']).trim().to_string()).filter(|t| !t.is_empty())
    };
    let mut inv = Inventory { slots: Vec::new(), drive: None };
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Data Transfer Element ") {
            let Some((n, state)) = rest.split_once(':') else { continue };
            if n.trim().parse::<u32>().ok() != Some(drive) || !state.starts_with("Full") {
                continue;
            }
            let from = state.split_once("Storage Element ").and_then(|(_, r)| r.split_whitespace().next()).and_then(|n| n.parse().ok());
            if let Some(t) = tag(state) {
                inv.drive = Some((t, from));
            }
        } else if let Some(rest) = line.strip_prefix("Storage Element ") {
            let Some((n, state)) = rest.split_once(':') else { continue };
            let Some(n) = n.split_whitespace().next().and_then(|n| n.parse().ok()) else { continue };
            inv.slots.push((n, if state.starts_with("Full") { tag(state) } else { None }));
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtx_status_is_read_into_slots_and_the_drive() {
        let text = "  Storage Changer /dev/sg3:1 Drives, 4 Slots ( 1 Import/Export )
Data Transfer Element 0:Full (Storage Element 3 Loaded):VolumeTag = A00003L8
      Storage Element 1:Full :VolumeTag=A00001L8
      Storage Element 2:Empty
      Storage Element 3:Empty
      Storage Element 4 IMPORT/EXPORT:Full :VolumeTag=B00001L8
";
        let inv = parse_mtx_status(text, 0);
        assert_eq!(inv.drive, Some(("A00003L8".into(), Some(3))));
        assert_eq!(inv.slots, vec![(1, Some("A00001L8".into())), (2, None), (3, None), (4, Some("B00001L8".into()))]);
        assert_eq!(parse_mtx_status("Data Transfer Element 0:Empty\n", 0).drive, None);
    }

    #[test]
    fn the_emulated_library_moves_a_cartridge_between_slot_and_drive() {
        let d = tempfile::tempdir().unwrap();
        for (slot, b) in [("001", "A00001L8"), ("002", "A00002L8")] {
            std::fs::create_dir_all(d.path().join("slots").join(slot).join(b)).unwrap();
        }
        std::fs::create_dir_all(d.path().join("slots/003")).unwrap();
        let mut lib = FileLibrary::open(d.path()).unwrap();
        let p = lib.load("A00002L8").unwrap();
        assert_eq!(p, d.path().join("drive0/A00002L8"));
        assert!(p.is_dir() && !d.path().join("slots/002/A00002L8").exists());
        // Loading another returns the first to its own slot.
        lib.load("A00001L8").unwrap();
        assert!(d.path().join("slots/002/A00002L8").is_dir());
        let inv = lib.inventory().unwrap();
        assert_eq!(inv.drive, Some(("A00001L8".into(), Some(1))));
        match lib.load("A00009L8") {
            Err(ChangerError::NotInLibrary { barcode, what }) => {
                assert_eq!(barcode, "A00009L8");
                assert!(what.contains("slot 2: A00002L8"), "{what}");
            }
            other => panic!("{other:?}"),
        }
        lib.unload().unwrap();
        assert!(d.path().join("slots/001/A00001L8").is_dir());
        assert_eq!(lib.inventory().unwrap().drive, None);
    }
}
