//! Media: probing (FFmpeg through ffmpeg-next), the proxy ladder, image
//! sequences, the QuickTime box reader/writer for virtual slices, and the MXF
//! remux cache.

pub mod clip_match;
pub mod extract;
pub mod facts;
pub mod hls;
pub mod otio;
pub mod probe;
pub mod proxy;
pub mod qt;
pub mod remux;
pub mod sequence;
pub mod slice;
pub mod tcfact;
pub mod wav;
