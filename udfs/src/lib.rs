//! bund-udfs owns Bund's scalar functions: masking and domain helpers for Shanghai's city
//! data (resident ID numbers, unified social credit codes, division codes, GCJ-02 / BD-09
//! coordinates). The pure logic lives in [`domain`], free of Arrow, so the server's example
//! data generator and the SQL functions share one implementation.
//!
//! It may import DataFusion (for the function wrappers) and nothing else of Bund.

use std::sync::Arc;

use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::ScalarUDF;

pub mod domain;
pub mod domain_fns;
mod kernel;
pub mod mask;
#[cfg(test)]
mod testing;

/// Every Bund scalar function.
pub fn all() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(mask::keep::MaskKeepFunc::new())),
        Arc::new(ScalarUDF::from(mask::id_card::MaskIdCardFunc::new())),
        Arc::new(ScalarUDF::from(mask::phone::MaskPhoneFunc::new())),
        Arc::new(ScalarUDF::from(mask::email::MaskEmailFunc::new())),
        Arc::new(ScalarUDF::from(mask::name_cn::MaskNameCnFunc::new())),
        Arc::new(ScalarUDF::from(
            domain_fns::id_card_valid::IdCardValidFunc::new(),
        )),
        Arc::new(ScalarUDF::from(
            domain_fns::id_card_birth::IdCardBirthFunc::new(),
        )),
        Arc::new(ScalarUDF::from(
            domain_fns::id_card_sex::IdCardSexFunc::new(),
        )),
        Arc::new(ScalarUDF::from(domain_fns::uscc_valid::UsccValidFunc::new())),
        Arc::new(ScalarUDF::from(
            domain_fns::district_name::DistrictNameFunc::new(),
        )),
    ]
}

/// Registers every function of [`all`] in `state`, replacing any of the same name.
pub fn register_all(state: &mut SessionState) {
    for udf in all() {
        // SessionState's registry only inserts into a map: it never refuses a function, and
        // the function it may give back is one of ours from an earlier registration.
        let _replaced = state.register_udf(udf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_is_documented_with_an_sql_example() {
        let functions = all();
        assert_eq!(functions.len(), 10);
        for f in functions {
            let doc = f
                .documentation()
                .unwrap_or_else(|| panic!("{} has no doc", f.name()));
            let example = doc.sql_example.as_deref().unwrap_or_default();
            assert!(example.contains(f.name()), "{}: {example}", f.name());
        }
    }
}
