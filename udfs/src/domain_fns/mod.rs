//! SQL wrappers of [`crate::domain`]: ID numbers, credit codes, division codes, phone
//! numbers and coordinates.

pub mod bd09_to_gcj02;
pub mod district_name;
pub mod gcj02_to_bd09;
pub mod gcj02_to_wgs84;
pub mod geo_distance_m;
pub mod id_card_age;
pub mod id_card_birth;
pub mod id_card_region;
pub mod id_card_sex;
pub mod id_card_upgrade;
pub mod id_card_valid;
pub mod phone_valid;
pub(crate) mod point;
pub mod uscc_entity_type;
pub mod uscc_region;
pub mod uscc_valid;
pub mod wgs84_to_gcj02;
