//! Masking functions. Each keeps what its policy allows and replaces every other character
//! by one mask character, except `mask_email` and `mask_address_cn`, whose fixed `***` /
//! `****` hide the length of what they hide too. Results keep the input's type; NULL in
//! gives NULL out. `mask_date_year`, `mask_round` and `mask_null` generalise or drop values
//! of other types; `mask_token` replaces a value by a keyed token.

pub(crate) mod address_cn;
pub(crate) mod date_year;
pub(crate) mod email;
pub(crate) mod keep;
pub(crate) mod name_cn;
pub(crate) mod null;
pub(crate) mod round;
pub mod token;
