//! PostgreSQL's binary COPY format decoded straight into Arrow arrays: one pass over the
//! bytes, builders per column, no per-row allocation.
//!
//! Stream: an 11-byte signature, flags, a header extension; then tuples of a 16-bit field
//! count and, per field, a 32-bit length (-1 for NULL) and the value in PostgreSQL's
//! binary send format; a field count of -1 ends it.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Decimal256Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, ListArray,
    StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, FieldRef, SchemaRef, TimeUnit, i256};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A decoding failure: the column and what was wrong.
pub(crate) type DecodeResult<T> = Result<T, String>;

fn be_i16(b: &[u8]) -> i16 {
    i16::from_be_bytes([b[0], b[1]])
}
fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

fn expect_len(v: &[u8], n: usize, what: &str) -> DecodeResult<()> {
    if v.len() == n {
        Ok(())
    } else {
        Err(format!("{what} value of {} bytes, expected {n}", v.len()))
    }
}

/// A builder for one column of one Arrow type (PostgreSQL's binary values here, SQLite's
/// values in `sqlite.rs`).
pub(crate) enum Builder {
    Boolean(BooleanBuilder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal128(Decimal128Builder, i8),
    Decimal256(Decimal256Builder, i8),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Date32(Date32Builder),
    Time64(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    List {
        field: FieldRef,
        child: Box<Builder>,
        offsets: Vec<i32>,
        valid: Vec<bool>,
    },
}

impl Builder {
    pub(crate) fn new(t: &DataType, capacity: usize) -> DecodeResult<Self> {
        Ok(match t {
            DataType::Boolean => Self::Boolean(BooleanBuilder::with_capacity(capacity)),
            DataType::Int16 => Self::Int16(Int16Builder::with_capacity(capacity)),
            DataType::Int32 => Self::Int32(Int32Builder::with_capacity(capacity)),
            DataType::Int64 => Self::Int64(Int64Builder::with_capacity(capacity)),
            DataType::Float32 => Self::Float32(Float32Builder::with_capacity(capacity)),
            DataType::Float64 => Self::Float64(Float64Builder::with_capacity(capacity)),
            DataType::Decimal128(p, s) => Self::Decimal128(
                Decimal128Builder::with_capacity(capacity)
                    .with_precision_and_scale(*p, *s)
                    .map_err(|e| e.to_string())?,
                *s,
            ),
            DataType::Decimal256(p, s) => Self::Decimal256(
                Decimal256Builder::with_capacity(capacity)
                    .with_precision_and_scale(*p, *s)
                    .map_err(|e| e.to_string())?,
                *s,
            ),
            DataType::Utf8 => Self::Utf8(StringBuilder::with_capacity(capacity, capacity * 16)),
            DataType::Binary => Self::Binary(BinaryBuilder::with_capacity(capacity, capacity * 16)),
            DataType::Date32 => Self::Date32(Date32Builder::with_capacity(capacity)),
            DataType::Time64(TimeUnit::Microsecond) => {
                Self::Time64(Time64MicrosecondBuilder::with_capacity(capacity))
            }
            DataType::Timestamp(TimeUnit::Microsecond, tz) => Self::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone_opt(tz.clone()),
            ),
            DataType::List(field) => {
                let mut offsets = Vec::with_capacity(capacity + 1);
                offsets.push(0);
                Self::List {
                    field: Arc::clone(field),
                    child: Box::new(Self::new(field.data_type(), capacity)?),
                    offsets,
                    valid: Vec::with_capacity(capacity),
                }
            }
            other => return Err(format!("cannot decode PostgreSQL values as {other}")),
        })
    }

    pub(crate) fn append_null(&mut self) {
        match self {
            Self::Boolean(b) => b.append_null(),
            Self::Int16(b) => b.append_null(),
            Self::Int32(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Decimal128(b, _) => b.append_null(),
            Self::Decimal256(b, _) => b.append_null(),
            Self::Utf8(b) => b.append_null(),
            Self::Binary(b) => b.append_null(),
            Self::Date32(b) => b.append_null(),
            Self::Time64(b) => b.append_null(),
            Self::Timestamp(b) => b.append_null(),
            Self::List { offsets, valid, .. } => {
                offsets.push(*offsets.last().unwrap_or(&0));
                valid.push(false);
            }
        }
    }

    fn append(&mut self, v: &[u8]) -> DecodeResult<()> {
        match self {
            Self::Boolean(b) => {
                expect_len(v, 1, "boolean")?;
                b.append_value(v[0] != 0);
            }
            Self::Int16(b) => {
                expect_len(v, 2, "int2")?;
                b.append_value(be_i16(v));
            }
            Self::Int32(b) => {
                expect_len(v, 4, "int4")?;
                b.append_value(be_i32(v));
            }
            Self::Int64(b) => {
                expect_len(v, 8, "int8")?;
                b.append_value(be_i64(v));
            }
            Self::Float32(b) => {
                expect_len(v, 4, "float4")?;
                b.append_value(f32::from_bits(be_i32(v) as u32));
            }
            Self::Float64(b) => {
                expect_len(v, 8, "float8")?;
                b.append_value(f64::from_bits(be_i64(v) as u64));
            }
            Self::Decimal128(b, scale) => {
                let x = numeric(v, *scale)?;
                let x = x
                    .to_i128()
                    .ok_or_else(|| "numeric value does not fit decimal(38)".to_string())?;
                b.append_value(x);
            }
            Self::Decimal256(b, scale) => b.append_value(numeric(v, *scale)?),
            Self::Utf8(b) => {
                let s = std::str::from_utf8(v).map_err(|e| format!("text is not UTF-8: {e}"))?;
                b.append_value(s);
            }
            Self::Binary(b) => b.append_value(v),
            Self::Date32(b) => {
                expect_len(v, 4, "date")?;
                let d = be_i32(v);
                // ±infinity are i32::MAX / MIN
                let days = d
                    .checked_add(PG_EPOCH_DAYS)
                    .ok_or_else(|| "date out of range (infinity?)".to_string())?;
                b.append_value(days);
            }
            Self::Time64(b) => {
                expect_len(v, 8, "time")?;
                b.append_value(be_i64(v));
            }
            Self::Timestamp(b) => {
                expect_len(v, 8, "timestamp")?;
                let t = be_i64(v)
                    .checked_add(PG_EPOCH_MICROS)
                    .ok_or_else(|| "timestamp out of range (infinity?)".to_string())?;
                b.append_value(t);
            }
            Self::List {
                child,
                offsets,
                valid,
                ..
            } => {
                let n = array_elements(v, child)?;
                let last = *offsets.last().unwrap_or(&0);
                offsets.push(last + n);
                valid.push(true);
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> DecodeResult<ArrayRef> {
        Ok(match self {
            Self::Boolean(b) => Arc::new(b.finish()),
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Decimal128(b, _) => Arc::new(b.finish()),
            Self::Decimal256(b, _) => Arc::new(b.finish()),
            Self::Utf8(b) => Arc::new(b.finish()),
            Self::Binary(b) => Arc::new(b.finish()),
            Self::Date32(b) => Arc::new(b.finish()),
            Self::Time64(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::List {
                field,
                child,
                offsets,
                valid,
            } => {
                let values = child.finish()?;
                let offs = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                let nulls = NullBuffer::from(std::mem::take(valid));
                let nulls = (nulls.null_count() > 0).then_some(nulls);
                Arc::new(
                    ListArray::try_new(Arc::clone(field), offs, values, nulls)
                        .map_err(|e| e.to_string())?,
                )
            }
        })
    }
}

/// A one-dimensional array value: its elements appended to `child`; returns how many.
fn array_elements(v: &[u8], child: &mut Builder) -> DecodeResult<i32> {
    if v.len() < 12 {
        return Err("truncated array value".into());
    }
    let ndim = be_i32(v);
    if ndim == 0 {
        return Ok(0);
    }
    if ndim != 1 {
        return Err(format!(
            "{ndim}-dimensional arrays are not supported (one dimension only)"
        ));
    }
    if v.len() < 20 {
        return Err("truncated array value".into());
    }
    let n = be_i32(&v[12..]);
    let mut pos = 20;
    for _ in 0..n {
        let len = v
            .get(pos..pos + 4)
            .map(be_i32)
            .ok_or("truncated array value")?;
        pos += 4;
        if len < 0 {
            child.append_null();
        } else {
            let end = pos + len as usize;
            child.append(v.get(pos..end).ok_or("truncated array value")?)?;
            pos = end;
        }
    }
    Ok(n)
}

/// A `numeric` in binary form as an integer scaled by 10^scale.
fn numeric(v: &[u8], scale: i8) -> DecodeResult<i256> {
    if v.len() < 8 {
        return Err("truncated numeric value".into());
    }
    let ndigits = be_i16(v) as usize;
    let weight = i32::from(be_i16(&v[2..]));
    let sign = u16::from_be_bytes([v[4], v[5]]);
    if sign == 0xC000 {
        return Err("NaN cannot be read as a decimal".into());
    }
    if sign == 0xD000 || sign == 0xF000 {
        return Err("infinity cannot be read as a decimal".into());
    }
    if v.len() != 8 + 2 * ndigits {
        return Err("malformed numeric value".into());
    }
    let ten_k = i256::from_i128(10_000);
    let mut acc = i256::ZERO;
    for i in 0..ndigits {
        let d = u16::from_be_bytes([v[8 + 2 * i], v[9 + 2 * i]]);
        acc = acc
            .checked_mul(ten_k)
            .and_then(|a| a.checked_add(i256::from_i128(i128::from(d))))
            .ok_or("numeric value too large")?;
    }
    // acc * 10000^(weight + 1 - ndigits) * 10^scale
    let exp10 = 4 * (weight + 1 - ndigits as i32) + i32::from(scale);
    let ten = i256::from_i128(10);
    if exp10 >= 0 {
        for _ in 0..exp10 {
            acc = acc.checked_mul(ten).ok_or("numeric value too large")?;
        }
    } else {
        for _ in 0..(-exp10) {
            // the column's scale is the declared one; a remote value with more fraction
            // digits (a query source) is truncated towards zero like a cast would round
            acc = acc.wrapping_div(ten);
        }
    }
    Ok(if sign == 0x4000 {
        acc.wrapping_neg()
    } else {
        acc
    })
}

/// Decodes a binary COPY stream into batches of `batch_size` rows.
pub(crate) struct CopyDecoder {
    schema: SchemaRef,
    builders: Vec<Builder>,
    batch_size: usize,
    rows: usize,
    header_done: bool,
    finished: bool,
}

impl CopyDecoder {
    pub(crate) fn new(schema: SchemaRef, batch_size: usize) -> DecodeResult<Self> {
        let builders = schema
            .fields()
            .iter()
            .map(|f| Builder::new(f.data_type(), batch_size))
            .collect::<DecodeResult<Vec<_>>>()?;
        Ok(Self {
            schema,
            builders,
            batch_size,
            rows: 0,
            header_done: false,
            finished: false,
        })
    }

    pub(crate) fn finished(&self) -> bool {
        self.finished
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Decodes the complete tuples at the start of `buf`; returns the bytes consumed. Stops
    /// early when a batch is full (`rows() >= batch_size`).
    pub(crate) fn decode(&mut self, buf: &[u8]) -> DecodeResult<usize> {
        let mut pos = 0;
        if !self.header_done {
            if buf.len() < SIGNATURE.len() + 8 {
                return Ok(0);
            }
            if &buf[..SIGNATURE.len()] != SIGNATURE {
                return Err("not a binary COPY stream".into());
            }
            let ext = be_i32(&buf[SIGNATURE.len() + 4..]) as usize;
            let header = SIGNATURE.len() + 8 + ext;
            if buf.len() < header {
                return Ok(0);
            }
            pos = header;
            self.header_done = true;
        }
        let ncols = self.builders.len();
        while self.rows < self.batch_size && !self.finished {
            let Some(count) = buf.get(pos..pos + 2).map(be_i16) else {
                break;
            };
            if count == -1 {
                self.finished = true;
                pos += 2;
                break;
            }
            if count as usize != ncols {
                return Err(format!("tuple of {count} fields, expected {ncols}"));
            }
            // Is the whole tuple here? Walk the lengths first, decode after.
            let mut end = pos + 2;
            let mut complete = true;
            for _ in 0..ncols {
                match buf.get(end..end + 4).map(be_i32) {
                    Some(len) => end += 4 + len.max(0) as usize,
                    None => {
                        complete = false;
                        break;
                    }
                }
            }
            if !complete || end > buf.len() {
                break;
            }
            let mut p = pos + 2;
            for (i, b) in self.builders.iter_mut().enumerate() {
                let len = be_i32(&buf[p..]);
                p += 4;
                if len < 0 {
                    b.append_null();
                } else {
                    let l = len as usize;
                    b.append(&buf[p..p + l])
                        .map_err(|m| format!("column `{}`: {m}", self.schema.field(i).name()))?;
                    p += l;
                }
            }
            pos = end;
            self.rows += 1;
        }
        Ok(pos)
    }

    /// The rows decoded so far as a batch; the builders start over.
    pub(crate) fn flush(&mut self) -> DecodeResult<RecordBatch> {
        let rows = std::mem::take(&mut self.rows);
        finish_batch(&self.schema, &mut self.builders, rows)
    }
}

/// A decimal text (`-12.5`, `3`) as an integer scaled by 10^scale, exactly; `None` when
/// it is not a number or has more fractional digits than the scale.
pub(crate) fn parse_decimal(s: &str, scale: i8) -> Option<i256> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = u32::try_from(scale).ok()?;
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > scale as usize
    {
        return None;
    }
    let ten = i256::from_i128(10);
    let mut v = i256::ZERO;
    for b in int.bytes().chain(frac.bytes()) {
        v = v
            .checked_mul(ten)?
            .checked_add(i256::from_i128(i128::from(b - b'0')))?;
    }
    v = v.checked_mul(ten.checked_pow(scale - frac.len() as u32)?)?;
    Some(if neg { v.checked_neg()? } else { v })
}

/// Rows appended value by value into one builder per column, handed over as batches of
/// `batch_size` rows (the MySQL and SQLite readers).
pub(crate) struct RowBatches {
    schema: SchemaRef,
    builders: Vec<Builder>,
    rows: usize,
    batch_size: usize,
}

impl RowBatches {
    pub(crate) fn new(schema: &SchemaRef, batch_size: usize) -> DecodeResult<Self> {
        let builders = schema
            .fields()
            .iter()
            .map(|f| Builder::new(f.data_type(), batch_size))
            .collect::<DecodeResult<Vec<_>>>()?;
        Ok(Self {
            schema: Arc::clone(schema),
            builders,
            rows: 0,
            batch_size,
        })
    }

    pub(crate) fn width(&self) -> usize {
        self.builders.len()
    }

    /// Appends one value to column `i` with `f`; an error names the column.
    pub(crate) fn append(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut Builder) -> DecodeResult<()>,
    ) -> DecodeResult<()> {
        f(&mut self.builders[i])
            .map_err(|m| format!("column `{}`: {m}", self.schema.field(i).name()))
    }

    /// Ends a row: the batch when `batch_size` rows are complete.
    pub(crate) fn end_row(&mut self) -> DecodeResult<Option<RecordBatch>> {
        self.rows += 1;
        if self.rows < self.batch_size {
            return Ok(None);
        }
        self.finish()
    }

    /// The rows not handed over yet, if any.
    pub(crate) fn finish(&mut self) -> DecodeResult<Option<RecordBatch>> {
        if self.rows == 0 {
            return Ok(None);
        }
        let rows = std::mem::take(&mut self.rows);
        finish_batch(&self.schema, &mut self.builders, rows).map(Some)
    }
}

/// The builders' contents as one batch of `rows` rows; the builders start over.
pub(crate) fn finish_batch(
    schema: &SchemaRef,
    builders: &mut [Builder],
    rows: usize,
) -> DecodeResult<RecordBatch> {
    let columns = builders
        .iter_mut()
        .map(Builder::finish)
        .collect::<DecodeResult<Vec<_>>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(ndigits: &[u16], weight: i16, sign: u16, dscale: i16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(ndigits.len() as i16).to_be_bytes());
        v.extend_from_slice(&weight.to_be_bytes());
        v.extend_from_slice(&sign.to_be_bytes());
        v.extend_from_slice(&dscale.to_be_bytes());
        for d in ndigits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn decimal_texts_parse_exactly() {
        let p = |s: &str, scale| parse_decimal(s, scale).and_then(|x| x.to_i128());
        assert_eq!(p("-12.5", 2), Some(-1250));
        assert_eq!(p("3", 2), Some(300));
        assert_eq!(p("1.234", 2), None);
        assert_eq!(p("abc", 2), None);
        assert_eq!(p("", 2), None);
        let big = "12345678901234567890123456789012345678.0123456789";
        assert_eq!(
            parse_decimal(big, 10).unwrap().to_string(),
            "123456789012345678901234567890123456780123456789"
        );
    }

    #[test]
    fn numerics_scale_exactly() {
        // 12345.678 = [1, 2345, 6780] weight 1
        let v = numeric_bytes(&[1, 2345, 6780], 1, 0, 3);
        assert_eq!(numeric(&v, 3).unwrap(), i256::from_i128(12_345_678));
        assert_eq!(numeric(&v, 5).unwrap(), i256::from_i128(1_234_567_800));
        // -0.05 = [500] weight -1
        let v = numeric_bytes(&[500], -1, 0x4000, 2);
        assert_eq!(numeric(&v, 2).unwrap(), i256::from_i128(-5));
        // 0
        let v = numeric_bytes(&[], 0, 0, 0);
        assert_eq!(numeric(&v, 2).unwrap(), i256::ZERO);
        // 10^40 = [1] weight 10
        let v = numeric_bytes(&[1], 10, 0, 0);
        assert!(numeric(&v, 0).unwrap() > i256::from_i128(i128::MAX));
        assert!(numeric(&numeric_bytes(&[], 0, 0xC000, 0), 0).is_err());
    }
}
