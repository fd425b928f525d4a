//! `reelfs.Timecode`: the crate's SMPTE timecode (src/timecode) for Python. A
//! timecode is a frame count at a rate; labels are only how it is read and
//! written, so arithmetic is integer arithmetic and drop-frame matters only
//! when a label is parsed or printed (as in the rest of reelfs).

use super::errors::InvalidTimecode;
use crate::timecode::{FrameRate, Timecode as Tc, TimecodeError};
use pyo3::basic::CompareOp;
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use std::hash::{Hash, Hasher};

fn tc_err(e: TimecodeError) -> PyErr {
    InvalidTimecode::new_err(e.to_string())
}

/// A rate as Python gives it: "29.97 DF", "30000/1001", "25", fractions.Fraction,
/// an int or a float (a probed 29.97 is 29.97002997…; within 0.01 of a standard
/// rate counts as it, as everywhere in reelfs).
fn rate_of(rate: &Bound<'_, PyAny>, drop_frame: Option<bool>) -> PyResult<FrameRate> {
    let base = if let Ok(s) = rate.extract::<String>() {
        s.parse::<FrameRate>().map_err(tc_err)?
    } else if let Ok(n) = rate.extract::<u32>() {
        format!("{n}").parse::<FrameRate>().map_err(tc_err)?
    } else if let (Ok(num), Ok(den)) =
        (rate.getattr("numerator").and_then(|v| v.extract::<u32>()), rate.getattr("denominator").and_then(|v| v.extract::<u32>()))
    {
        FrameRate::from_rational(num, den, false)
            .ok_or_else(|| tc_err(TimecodeError::UnknownFrameRate { input: format!("{num}/{den}") }))?
    } else if let Ok(f) = rate.extract::<f64>() {
        FrameRate::from_f64(f, false).ok_or_else(|| tc_err(TimecodeError::UnknownFrameRate { input: f.to_string() }))?
    } else {
        return Err(PyTypeError::new_err("rate must be a str ('29.97 DF', '30000/1001'), a fractions.Fraction, an int or a float"));
    };
    match drop_frame {
        None => Ok(base),
        Some(df) => base.with_drop_frame(df).ok_or_else(|| {
            InvalidTimecode::new_err(format!("{base} has no drop-frame counting; drop-frame exists at 29.97 and 59.94 only"))
        }),
    }
}

/// An SMPTE timecode: a frame position at a frame rate.
///
/// `Timecode("01:00:10:00", rate="24000/1001")`; `;` before the frames is
/// drop-frame (`"00:59:59;28"` at 29.97). Add or subtract frames with `+`/`-`,
/// subtract two timecodes for the frames between them, compare timecodes of the
/// same rate. A label drop-frame skips is an error, never rounded.
#[pyclass(module = "reelfs", frozen)]
#[derive(Clone, Copy)]
pub struct Timecode {
    pub inner: Tc,
}

#[pymethods]
impl Timecode {
    #[new]
    #[pyo3(signature = (label, rate, drop_frame=None))]
    fn new(label: &str, rate: &Bound<'_, PyAny>, drop_frame: Option<bool>) -> PyResult<Timecode> {
        let r = rate_of(rate, drop_frame)?;
        // An explicit drop_frame is the media's counting: a label that disagrees is an error.
        let inner = if drop_frame.is_some() { Tc::parse_for_media(label, r) } else { Tc::parse(label, r) }.map_err(tc_err)?;
        Ok(Timecode { inner })
    }

    /// The timecode `frames` frames after 00:00:00:00 at `rate`.
    #[staticmethod]
    #[pyo3(signature = (frames, rate, drop_frame=None))]
    fn from_frames(frames: i64, rate: &Bound<'_, PyAny>, drop_frame: Option<bool>) -> PyResult<Timecode> {
        Ok(Timecode { inner: Tc::from_frames(frames, rate_of(rate, drop_frame)?) })
    }

    /// Frames since 00:00:00:00.
    fn frames(&self) -> i64 {
        self.inner.frames()
    }

    /// The exact rate, frames per second (fractions.Fraction(30000, 1001)).
    #[getter]
    fn rate<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (n, d) = self.inner.rate().num_den();
        py.import("fractions")?.getattr("Fraction")?.call1((n, d))
    }

    /// The rate as reelfs writes it: "23.976", "29.97 DF", "25".
    #[getter]
    fn rate_name(&self) -> String {
        self.inner.rate().to_string()
    }

    #[getter]
    fn drop_frame(&self) -> bool {
        self.inner.rate().is_drop_frame()
    }

    /// Frame labels per second (24 at 23.976, 30 at 29.97).
    #[getter]
    fn fps(&self) -> u32 {
        self.inner.rate().nominal_fps()
    }

    /// Seconds since 00:00:00:00 as an exact fractions.Fraction.
    fn seconds<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (n, d) = self.inner.seconds();
        py.import("fractions")?.getattr("Fraction")?.call1((n, d))
    }

    /// The same frame counted the other way (29.97 DF <-> NDF).
    fn with_drop_frame(&self, drop_frame: bool) -> PyResult<Timecode> {
        self.inner
            .with_drop_frame(drop_frame)
            .map(|inner| Timecode { inner })
            .ok_or_else(|| InvalidTimecode::new_err(format!("{} has no drop-frame counting", self.inner.rate())))
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!("reelfs.Timecode('{}', rate='{}')", self.inner, self.inner.rate())
    }

    fn __add__(&self, frames: i64) -> PyResult<Timecode> {
        self.inner.checked_add(frames).map(|inner| Timecode { inner }).ok_or_else(|| PyOverflowError::new_err("timecode out of range"))
    }

    fn __radd__(&self, frames: i64) -> PyResult<Timecode> {
        self.__add__(frames)
    }

    /// `tc - 24` is a timecode; `tc - other` is the frames between them.
    fn __sub__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        if let Ok(o) = other.downcast::<Timecode>() {
            let frames = self.inner.frames_since(&o.get().inner).map_err(tc_err)?;
            return Ok(frames.into_pyobject(py)?.into_any().unbind());
        }
        let frames: i64 = other.extract().map_err(|_| PyTypeError::new_err("subtract an int (frames) or a Timecode"))?;
        let t = self.__add__(frames.checked_neg().ok_or_else(|| PyOverflowError::new_err("timecode out of range"))?)?;
        Ok(Py::new(py, t)?.into_any())
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<PyObject> {
        let py = other.py();
        let Ok(o) = other.downcast::<Timecode>() else { return Ok(py.NotImplemented()) };
        let o = o.get().inner;
        let r = match op {
            CompareOp::Eq => self.inner == o,
            CompareOp::Ne => self.inner != o,
            _ => {
                // Ordered only at the same rate: a frame number means another instant
                // at another rate, and DF/NDF twins label frames differently.
                let Some(ord) = self.inner.partial_cmp(&o) else {
                    return Err(PyTypeError::new_err(format!(
                        "cannot order a timecode at {} against one at {}",
                        self.inner.rate(),
                        o.rate()
                    )));
                };
                op.matches(ord)
            }
        };
        Ok(r.into_pyobject(py)?.to_owned().into_any().unbind())
    }

    fn __hash__(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner.hash(&mut h);
        h.finish()
    }
}
