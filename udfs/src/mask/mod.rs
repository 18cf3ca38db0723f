//! Masking functions. Each keeps what its policy allows and replaces every other character
//! by one mask character, except `mask_email`, whose fixed `***` hides the local part's
//! length too. Results keep the input's string type; NULL in gives NULL out.

pub mod email;
pub mod id_card;
pub mod keep;
pub mod name_cn;
pub mod phone;
