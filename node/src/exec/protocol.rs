//! The parent <-> worker protocol over the worker's stdin/stdout.
//!
//! Every message is one frame: `u32 LE header length ‖ header (JSON) ‖ u64 LE payload
//! length ‖ payload`. The worker first sends a [`Hello`]; then for each [`Request`]
//! (payload: the job input) it answers one [`Response`] (payload: the output bytes).

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stp_sdk::kernels::KernelId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{AdapterSummary, ExecError};

/// Largest accepted JSON header.
const MAX_HEADER: u32 = 1 << 16;

/// First message of a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Hello {
    /// Ready to run jobs on `adapter`; `fallback` says why the CPU is used under `auto`.
    Ready {
        adapter: AdapterSummary,
        fallback: Option<String>,
    },
    /// The worker cannot run jobs.
    Failed { error: WireError },
}

/// A job: the kernel id; the payload is the input.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    pub kernel: KernelId,
}

/// A job's outcome; on success the payload is the output.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Response {
    Done { elapsed_ns: u64 },
    Failed { error: WireError },
}

/// The errors a worker can report, as they cross the process boundary.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireError {
    NoAdapter {
        backends: String,
    },
    DeviceRequest {
        adapter: String,
        message: String,
    },
    InvalidWgsl {
        message: String,
    },
    PipelineRejected {
        message: String,
    },
    ExceedsDeviceLimit {
        what: String,
        value: u64,
        limit: u64,
    },
    Gpu {
        message: String,
    },
    EndlessLoop {
        function: String,
        line: u32,
    },
    OutOfFuel {
        budget: u32,
    },
}

impl From<ExecError> for WireError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::NoAdapter { backends } => Self::NoAdapter { backends },
            ExecError::DeviceRequest { adapter, message } => {
                Self::DeviceRequest { adapter, message }
            }
            ExecError::InvalidWgsl { message } => Self::InvalidWgsl { message },
            ExecError::PipelineRejected { message } => Self::PipelineRejected { message },
            ExecError::ExceedsDeviceLimit { what, value, limit } => {
                Self::ExceedsDeviceLimit { what, value, limit }
            }
            ExecError::EndlessLoop { function, line } => Self::EndlessLoop { function, line },
            ExecError::OutOfFuel { budget } => Self::OutOfFuel { budget },
            other => Self::Gpu {
                message: other.to_string(),
            },
        }
    }
}

impl From<WireError> for ExecError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::NoAdapter { backends } => Self::NoAdapter { backends },
            WireError::DeviceRequest { adapter, message } => {
                Self::DeviceRequest { adapter, message }
            }
            WireError::InvalidWgsl { message } => Self::InvalidWgsl { message },
            WireError::PipelineRejected { message } => Self::PipelineRejected { message },
            WireError::ExceedsDeviceLimit { what, value, limit } => {
                Self::ExceedsDeviceLimit { what, value, limit }
            }
            WireError::Gpu { message } => Self::Gpu { message },
            WireError::EndlessLoop { function, line } => Self::EndlessLoop { function, line },
            WireError::OutOfFuel { budget } => Self::OutOfFuel { budget },
        }
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn encode_header(header: &impl Serialize) -> io::Result<Vec<u8>> {
    let json = serde_json::to_vec(header).map_err(|e| invalid(e.to_string()))?;
    if json.len() > MAX_HEADER as usize {
        return Err(invalid("frame header too large"));
    }
    Ok(json)
}

/// Writes one frame (blocking; the worker side).
pub(crate) fn write_frame(
    w: &mut impl Write,
    header: &impl Serialize,
    payload: &[u8],
) -> io::Result<()> {
    let json = encode_header(header)?;
    w.write_all(&(json.len() as u32).to_le_bytes())?;
    w.write_all(&json)?;
    w.write_all(&(payload.len() as u64).to_le_bytes())?;
    w.write_all(payload)?;
    w.flush()
}

/// Reads one frame (blocking); `Ok(None)` on a clean end of stream before a frame.
pub(crate) fn read_frame<T: DeserializeOwned>(
    r: &mut impl Read,
    max_payload: u64,
) -> io::Result<Option<(T, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let header_len = u32::from_le_bytes(len);
    if header_len > MAX_HEADER {
        return Err(invalid("frame header too large"));
    }
    let mut json = vec![0u8; header_len as usize];
    r.read_exact(&mut json)?;
    let header = serde_json::from_slice(&json).map_err(|e| invalid(e.to_string()))?;
    let mut plen = [0u8; 8];
    r.read_exact(&mut plen)?;
    let payload_len = u64::from_le_bytes(plen);
    if payload_len > max_payload {
        return Err(invalid(format!(
            "frame payload of {payload_len} bytes exceeds {max_payload}"
        )));
    }
    let mut payload = vec![0u8; payload_len as usize];
    r.read_exact(&mut payload)?;
    Ok(Some((header, payload)))
}

/// Writes one frame (async; the parent side).
pub(crate) async fn write_frame_async(
    w: &mut (impl AsyncWrite + Unpin),
    header: &impl Serialize,
    payload: &[u8],
) -> io::Result<()> {
    let json = encode_header(header)?;
    w.write_all(&(json.len() as u32).to_le_bytes()).await?;
    w.write_all(&json).await?;
    w.write_all(&(payload.len() as u64).to_le_bytes()).await?;
    w.write_all(payload).await?;
    w.flush().await
}

/// Reads one frame (async); end of stream is an error here (the worker must answer).
pub(crate) async fn read_frame_async<T: DeserializeOwned>(
    r: &mut (impl AsyncRead + Unpin),
    max_payload: u64,
) -> io::Result<(T, Vec<u8>)> {
    let header_len = r.read_u32_le().await?;
    if header_len > MAX_HEADER {
        return Err(invalid("frame header too large"));
    }
    let mut json = vec![0u8; header_len as usize];
    r.read_exact(&mut json).await?;
    let header = serde_json::from_slice(&json).map_err(|e| invalid(e.to_string()))?;
    let payload_len = r.read_u64_le().await?;
    if payload_len > max_payload {
        return Err(invalid(format!(
            "frame payload of {payload_len} bytes exceeds {max_payload}"
        )));
    }
    let mut payload = vec![0u8; payload_len as usize];
    r.read_exact(&mut payload).await?;
    Ok((header, payload))
}
