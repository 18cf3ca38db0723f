//! SQL wrappers of [`crate::domain`], one module per module there: ID numbers, credit
//! codes, division codes, phone numbers and coordinates.

pub(crate) mod coords;
pub(crate) mod district;
pub(crate) mod id_card;
pub(crate) mod phone;
pub(crate) mod uscc;
