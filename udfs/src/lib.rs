//! bund-udfs owns Bund's scalar functions: masking and domain helpers for Shanghai's city
//! data (resident ID numbers, unified social credit codes, division codes, mobile numbers,
//! GCJ-02 / BD-09 coordinates). The pure logic lives in [`domain`], free of Arrow, so the
//! server's example data generator and the SQL functions share one implementation. Keys of
//! the keyed functions come from the server through a [`SecretStore`].
//!
//! It may import DataFusion (for the function wrappers), `hmac` and `sha2`, and nothing else
//! of Bund.

use std::sync::Arc;

use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::ScalarUDF;

pub mod domain;
mod domain_fns;
mod function;
mod kernel;
mod mask;
#[cfg(test)]
mod properties;
pub mod secrets;
#[cfg(test)]
mod sql_cases;
#[cfg(test)]
mod testing;

/// `mask_token`'s module under the name of its function.
pub use mask::token as mask_token;
pub use secrets::SecretStore;

use function::{Function, StringFn, Transform, Validator};

/// Names of functions that only policies may call (they carry secrets): ["mask_token"].
pub const POLICY_ONLY: &[&str] = &["mask_token"];

/// Every Bund scalar function; the keyed ones read their keys from `secrets`.
pub fn all(secrets: &Arc<SecretStore>) -> Vec<Arc<ScalarUDF>> {
    use domain_fns::{coords, district, id_card, phone, uscc};
    let udfs = vec![
        mask::keep::MaskKeep.udf(),
        mask::keep::MaskIdCard.udf(),
        mask::keep::MaskPhone.udf(),
        mask::email::MaskEmail.udf(),
        mask::name_cn::MaskNameCn.udf(),
        mask::address_cn::MaskAddressCn.udf(),
        mask::date_year::MaskDateYear.udf(),
        mask::round::MaskRound.udf(),
        mask::null::MaskNull.udf(),
        mask::token::MaskToken::new(Arc::clone(secrets)).udf(),
        id_card::IdCardValid.udf(),
        id_card::IdCardBirth.udf(),
        id_card::IdCardSex.udf(),
        id_card::IdCardRegion.udf(),
        id_card::IdCardAge.udf(),
        id_card::IdCardUpgrade.udf(),
        uscc::UsccValid.udf(),
        uscc::UsccRegion.udf(),
        uscc::UsccEntityType.udf(),
        district::DistrictName.udf(),
        phone::PhoneValid.udf(),
        coords::Wgs84ToGcj02.udf(),
        coords::Gcj02ToWgs84.udf(),
        coords::Gcj02ToBd09.udf(),
        coords::Bd09ToGcj02.udf(),
        coords::GeoDistanceM.udf(),
    ];
    udfs.into_iter().map(Arc::new).collect()
}

/// Registers every function of [`all`] in `state`, replacing any of the same name.
pub fn register_all(state: &mut SessionState, secrets: &Arc<SecretStore>) {
    for udf in all(secrets) {
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
        let functions = all(&Arc::new(SecretStore::new()));
        assert_eq!(functions.len(), 26);
        for f in functions {
            let doc = f
                .documentation()
                .unwrap_or_else(|| panic!("{} has no doc", f.name()));
            let example = doc.sql_example.as_deref().unwrap_or_default();
            assert!(example.contains(f.name()), "{}: {example}", f.name());
        }
    }

    #[test]
    fn function_names_are_unique_and_policy_only_ones_exist() {
        let functions = all(&Arc::new(SecretStore::new()));
        let mut names: Vec<_> = functions.iter().map(|f| f.name().to_owned()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), functions.len());
        for name in POLICY_ONLY {
            assert!(names.iter().any(|n| n == name), "{name}");
        }
    }

    #[test]
    fn register_all_makes_every_function_callable_in_a_session() {
        let mut state = datafusion::execution::SessionStateBuilder::new().build();
        let secrets = Arc::new(SecretStore::new());
        register_all(&mut state, &secrets);
        for f in all(&secrets) {
            assert!(
                state.scalar_functions().contains_key(f.name()),
                "{}",
                f.name()
            );
        }
    }
}
