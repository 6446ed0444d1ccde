//! Wire encoding and decoding of AMQP 0-9-1 primitives: integers, short and
//! long strings, field tables and field arrays, plus `DecodeError`, the
//! error every decoder in `protocol` returns.
//!
//! Decoders read from the front of a `&mut Bytes` and consume what they read.
//! Strings and byte values are zero-copy slices of the input (`split_to`).
//! Every length field is checked against the bytes actually present before
//! anything is sliced or allocated, and table/array nesting and size are bounded
//! by [`MAX_NESTING_DEPTH`] and [`MAX_TABLE_VALUES`], so hostile input can neither panic nor exhaust
//! memory. Encoders append to a `BytesMut` and cannot fail.
//!
//! Field value tags are RabbitMQ's (`rabbit_binary_parser` /
//! `rabbit_binary_generator`): `t b B s u I i l f d D S A T F V x`; `L` is
//! accepted on input as a signed 64-bit integer (as RabbitMQ does) and
//! re-encoded as `l`.
//!
//! The parts: `error` (`DecodeError`), `decode` (reading from `Bytes`),
//! `skip` (validating skippers over a `&[u8]`, for parsers that only need
//! to find the end of a value) and `encode`.

mod decode;
mod encode;
mod error;
mod skip;

pub use decode::{
    get_array, get_bytes, get_field_value, get_longstr, get_shortstr, get_table, get_u16, get_u32,
    get_u64, get_u8, skip, skip_longstr, skip_shortstr,
};
pub use encode::{put_array, put_field_value, put_longstr, put_shortstr, put_table};
pub use error::DecodeError;
pub use skip::{skip_shortstr_checked, skip_table};

/// Deepest nesting of tables/arrays inside a table that decoding accepts.
/// (RabbitMQ decodes any depth a frame holds; deeper is refused with 501.)
pub const MAX_NESTING_DEPTH: usize = 64;

/// Most values one table (or array, or value) may hold, nested ones
/// included: a frame of 128 KiB could otherwise hold 131,000 one-octet
/// values, each decoded into a `FieldValue` many times its size.
/// (RabbitMQ decodes every value a frame holds; more is refused with 501.)
pub const MAX_TABLE_VALUES: usize = 65_536;

#[cfg(test)]
pub(crate) mod tests;
