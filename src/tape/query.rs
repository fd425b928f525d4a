//! `tape ls` and `tape where`: the tape catalog, offline (no cartridge needed).

use super::error::{Result, TapeError};
use crate::archive::catalog::{CartridgeRow, TapeItemRow};
use crate::archive::Archive;

#[derive(Debug, Clone, serde::Serialize)]
pub struct CartridgeSummary {
    #[serde(flatten)]
    pub cartridge: CartridgeRow,
    pub pool: String,
    /// Files and parts on it or queued for it (abandoned ones not counted).
    pub files: u64,
    pub bytes: u64,
    pub written: u64,
    pub verified: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Listing {
    /// Every cartridge of every plan.
    Cartridges { cartridges: Vec<CartridgeSummary> },
    /// The files of one cartridge, in write order.
    Files { cartridge: CartridgeSummary, files: Vec<TapeItemRow> },
}

fn summary(a: &Archive, c: CartridgeRow) -> Result<CartridgeSummary> {
    let items: Vec<TapeItemRow> = a.catalog.tape_items_on(&c.barcode)?.into_iter().filter(|i| i.state != "abandoned").collect();
    let pool = a.catalog.tape_plan(&c.plan)?.map(|p| p.pool).unwrap_or_default();
    Ok(CartridgeSummary {
        pool,
        files: items.len() as u64,
        bytes: items.iter().map(|i| i.length).sum(),
        written: items.iter().filter(|i| i.state == "written" || i.state == "verified").count() as u64,
        verified: items.iter().filter(|i| i.state == "verified").count() as u64,
        cartridge: c,
    })
}

pub fn ls(a: &Archive, tape: Option<&str>) -> Result<Listing> {
    a.catalog.ensure_tape_schema()?;
    match tape {
        None => {
            let carts = a.catalog.cartridges(None)?;
            Ok(Listing::Cartridges { cartridges: carts.into_iter().map(|c| summary(a, c)).collect::<Result<_>>()? })
        }
        Some(b) => {
            let c = a.catalog.cartridge(b)?.ok_or_else(|| TapeError::NoSuchTape(b.into()))?;
            let files = a.catalog.tape_items_on(b)?;
            Ok(Listing::Files { cartridge: summary(a, c)?, files })
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Copy {
    pub barcode: String,
    pub copy: u32,
    pub state: String,
    pub tape_path: String,
    pub part: u32,
    pub parts: u32,
    pub offset: u64,
    pub length: u64,
    pub partition: Option<String>,
    pub start_block: Option<u64>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Whereabouts {
    pub source: String,
    pub copies: Vec<Copy>,
}

/// Every cartridge holding (or queued to hold) `BRANCH/PATH`, with parts.
pub fn where_is(a: &Archive, spec: &str) -> Result<Whereabouts> {
    a.catalog.ensure_tape_schema()?;
    let source = spec.trim_matches('/').to_string();
    let mut copies = Vec::new();
    for i in a.catalog.tape_items_of_source(&source)? {
        let copy = a.catalog.cartridge(&i.barcode)?.map(|c| c.copy).unwrap_or(0);
        copies.push(Copy {
            barcode: i.barcode,
            copy,
            state: i.state,
            tape_path: i.tape_path,
            part: i.part,
            parts: i.parts,
            offset: i.offset,
            length: i.length,
            partition: i.partition,
            start_block: i.start_block,
            note: i.note,
        });
    }
    if copies.is_empty() {
        return Err(TapeError::invalid(format!(
            "{source} is in no tape plan; `reelfs tape plan ARCHIVE {source}` plans it (give the path as BRANCH/PATH)"
        )));
    }
    copies.sort_by(|x, y| (x.copy, x.part, &x.barcode).cmp(&(y.copy, y.part, &y.barcode)));
    Ok(Whereabouts { source, copies })
}
