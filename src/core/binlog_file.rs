//! Binlog event framing from bytes: the events of a binlog file (the fixture tests read real
//! MySQL and MariaDB files with it) and the events inside a MySQL 8 compressed transaction
//! (TRANSACTION_PAYLOAD_EVENT, which the reader expands in the socket loop too).
//!
//! The driver's own readers trust their input (a short read or a bad length panics), so the
//! framing here checks every length before the driver sees the bytes, verifies CRC32
//! checksums when the format description says they are written, and keeps any panic of the
//! driver's decoding of one event from leaving this module: bytes a server or a disk mangled
//! give an error naming the offset, never a panic.

use crate::core::error::{CoreError, CoreResult};
use mysql::binlog::events::{Event, FormatDescriptionEvent, TransactionPayloadEvent};
use mysql::binlog::{BinlogChecksumAlg, BinlogVersion, TransactionPayloadCompressionType};
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Every binlog file starts with these four bytes.
pub const BINLOG_MAGIC: &[u8; 4] = b"\xfebin";
/// Length of the v4 event header: timestamp, type, server id, size, end position, flags.
pub const EVENT_HEADER_LEN: usize = 19;
const FORMAT_DESCRIPTION_EVENT: u8 = 15;
/// A decompressed transaction larger than this is refused (MySQL caps a transaction payload
/// at its max_allowed_packet-sized events; 1 GiB is what one transaction may hold).
pub const MAX_PAYLOAD_BYTES: u64 = 1 << 30;

/// Runs a decoding step of the driver, turning a panic into an error.
pub fn guarded<T>(what: &str, f: impl FnOnce() -> std::io::Result<T>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: the driver could not decode these bytes")),
    }
}

/// One event cut from `bytes` (which start with its header): the event and its length.
/// `fde` is the format description in force (its footer says whether a checksum follows);
/// with `verify`, a CRC32 checksum is compared with the event's bytes.
pub fn frame_event(
    fde: &FormatDescriptionEvent<'static>,
    bytes: &[u8],
    verify: bool,
) -> Result<(Event, usize), String> {
    let header = bytes
        .get(..EVENT_HEADER_LEN)
        .ok_or_else(|| format!("truncated event header ({} of {EVENT_HEADER_LEN} bytes)", bytes.len()))?;
    let size = u32::from_le_bytes([header[9], header[10], header[11], header[12]]) as usize;
    if size < EVENT_HEADER_LEN {
        return Err(format!("event size {size} is smaller than its header"));
    }
    let body = bytes.get(..size).ok_or_else(|| format!("truncated event ({} of {size} bytes)", bytes.len()))?;
    let etype = header[4];
    let event = guarded(&format!("event of type {etype}"), || Event::read(fde, body))?;
    if verify {
        check_crc(&event)?;
    }
    Ok((event, size))
}

/// Compares a CRC32 checksum, when the event carries one, with its bytes.
fn check_crc(event: &Event) -> Result<(), String> {
    let footer = event.footer();
    if !footer.get_checksum_enabled() {
        return Ok(());
    }
    let alg = footer.get_checksum_alg().map_err(|e| format!("unknown binlog checksum algorithm: {e}"))?;
    if let (Some(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32), Some(stored)) = (alg, event.checksum()) {
        let computed = event.calc_checksum(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32);
        if u32::from_le_bytes(stored) != computed {
            return Err(format!(
                "checksum mismatch in an event of type {}: stored {:#010x}, computed {computed:#010x}",
                event.header().event_type_raw(),
                u32::from_le_bytes(stored)
            ));
        }
    }
    Ok(())
}

/// The format description an FDE event sets, with its checksum footer.
pub fn format_description(event: &Event) -> Result<FormatDescriptionEvent<'static>, String> {
    guarded("format description event", || event.read_event::<FormatDescriptionEvent<'_>>())
        .map(|fde| fde.with_footer(event.footer()).into_owned())
}

/// The events of a binlog file's bytes, in order, each with its offset in the file. The
/// format description in force follows the file's FDE events; checksums are verified.
pub struct FileEvents<'a> {
    bytes: &'a [u8],
    offset: usize,
    fde: FormatDescriptionEvent<'static>,
    failed: bool,
}

impl<'a> FileEvents<'a> {
    pub fn new(bytes: &'a [u8]) -> CoreResult<Self> {
        if bytes.get(..4) != Some(&BINLOG_MAGIC[..]) {
            return Err(CoreError::binlog("not a binlog file: it does not start with the binlog magic bytes".into()));
        }
        Ok(FileEvents { bytes, offset: 4, fde: FormatDescriptionEvent::new(BinlogVersion::Version4), failed: false })
    }
}

impl Iterator for FileEvents<'_> {
    type Item = CoreResult<(usize, Event)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.bytes.len() {
            return None;
        }
        let at = self.offset;
        let framed = frame_event(&self.fde, &self.bytes[at..], true).and_then(|(event, size)| {
            if event.header().event_type_raw() == FORMAT_DESCRIPTION_EVENT {
                self.fde = format_description(&event)?;
            }
            Ok((event, size))
        });
        match framed {
            Ok((event, size)) => {
                self.offset += size;
                Some(Ok((at, event)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(CoreError::binlog(format!("at offset {at}: {e}"))))
            }
        }
    }
}

/// The events of a MySQL 8 compressed transaction (TRANSACTION_PAYLOAD_EVENT), decompressed
/// (zstd, or stored as is) and cut into events. They carry no checksums (WL#3549).
pub fn payload_events(event: &Event) -> Result<Vec<Event>, String> {
    let payload: TransactionPayloadEvent<'_> =
        guarded("transaction payload event", || event.read_event::<TransactionPayloadEvent<'_>>())?;
    let expected = payload.uncompressed_size();
    if expected > MAX_PAYLOAD_BYTES {
        return Err(format!("a compressed transaction of {expected} bytes is larger than {MAX_PAYLOAD_BYTES} bytes"));
    }
    let raw = match payload.algorithm() {
        TransactionPayloadCompressionType::NONE => payload.payload_raw().to_vec(),
        TransactionPayloadCompressionType::ZSTD => {
            let mut out = Vec::with_capacity(expected as usize);
            guarded("zstd payload", || payload.decompressed()?.take(MAX_PAYLOAD_BYTES + 1).read_to_end(&mut out))?;
            if out.len() as u64 > MAX_PAYLOAD_BYTES {
                return Err(format!("a compressed transaction larger than {MAX_PAYLOAD_BYTES} bytes"));
            }
            out
        }
    };
    if payload.algorithm() != TransactionPayloadCompressionType::NONE && raw.len() as u64 != expected {
        return Err(format!("the payload decompressed to {} bytes, its header says {expected}", raw.len()));
    }
    let mut footer = event.fde().footer();
    footer.set_checksum_enabled(false);
    let fde = event.fde().clone().with_footer(footer);
    let mut events = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let (inner, size) = frame_event(&fde, &raw[at..], false)
            .map_err(|e| format!("inside the compressed transaction at {at}: {e}"))?;
        if inner.header().event_type_raw() == event.header().event_type_raw() {
            return Err("a compressed transaction inside a compressed transaction".into());
        }
        events.push(inner);
        at += size;
    }
    Ok(events)
}
