//! Media: probing (FFmpeg through ffmpeg-next), the proxy ladder, image
//! sequences, the QuickTime box reader/writer for virtual slices, and the MXF
//! remux cache.

pub mod probe;
pub mod proxy;
pub mod sequence;
pub mod qt;
pub mod remux;
pub mod slice;
pub mod wav;
pub mod extract;
pub mod otio;
pub mod clip_match;
pub mod tcfact;
pub mod facts;
