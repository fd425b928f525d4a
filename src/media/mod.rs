//! Media: probing (FFmpeg through ffmpeg-next), and later the proxy ladder,
//! the QuickTime box reader/writer for virtual slices, and the MXF remux cache.

pub mod probe;
pub mod proxy;
pub mod proxy_run;
pub mod qt;
pub mod remux;
pub mod slice;
pub mod wav;
pub mod extract;
