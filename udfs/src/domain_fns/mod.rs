//! SQL wrappers of [`crate::domain`]: ID numbers, credit codes and division codes.

pub mod district_name;
pub mod id_card_birth;
pub mod id_card_sex;
pub mod id_card_valid;
pub mod uscc_valid;
