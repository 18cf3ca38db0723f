//! bund-udfs owns Bund's scalar functions: masking and domain helpers for Shanghai's city
//! data (resident ID numbers, unified social credit codes, division codes, GCJ-02 / BD-09
//! coordinates). The pure logic lives in [`domain`], free of Arrow, so the server's example
//! data generator and the SQL functions share one implementation.
//!
//! It may import DataFusion (for the function wrappers) and nothing else of Bund.

pub mod domain;
