//! Masking functions. Each keeps what its policy allows and replaces every other character
//! by one mask character, except `mask_email` and `mask_address_cn`, whose fixed `***` /
//! `****` hide the length of what they hide too. Results keep the input's type; NULL in
//! gives NULL out. `mask_date_year`, `mask_round` and `mask_null` generalise or drop values
//! of other types; `mask_token` replaces a value by a keyed token.

pub mod address_cn;
pub mod date_year;
pub mod email;
pub mod id_card;
pub mod keep;
pub mod name_cn;
pub mod null;
pub mod phone;
pub mod round;
pub mod token;
