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
pub mod domain_fns;
mod kernel;
pub mod mask;
#[cfg(test)]
mod properties;
pub mod secrets;
#[cfg(test)]
mod testing;

/// `mask_token`'s module under the name of its function.
pub use mask::token as mask_token;
pub use secrets::SecretStore;

/// Names of functions that only policies may call (they carry secrets): ["mask_token"].
pub const POLICY_ONLY: &[&str] = &["mask_token"];

/// Every Bund scalar function; the keyed ones read their keys from `secrets`.
pub fn all(secrets: &Arc<SecretStore>) -> Vec<Arc<ScalarUDF>> {
    use domain_fns::*;
    let udfs = vec![
        ScalarUDF::from(mask::keep::MaskKeepFunc::new()),
        ScalarUDF::from(mask::id_card::MaskIdCardFunc::new()),
        ScalarUDF::from(mask::phone::MaskPhoneFunc::new()),
        ScalarUDF::from(mask::email::MaskEmailFunc::new()),
        ScalarUDF::from(mask::name_cn::MaskNameCnFunc::new()),
        ScalarUDF::from(mask::address_cn::MaskAddressCnFunc::new()),
        ScalarUDF::from(mask::date_year::MaskDateYearFunc::new()),
        ScalarUDF::from(mask::round::MaskRoundFunc::new()),
        ScalarUDF::from(mask::null::MaskNullFunc::new()),
        ScalarUDF::from(mask::token::MaskTokenFunc::new(Arc::clone(secrets))),
        ScalarUDF::from(id_card_valid::IdCardValidFunc::new()),
        ScalarUDF::from(id_card_birth::IdCardBirthFunc::new()),
        ScalarUDF::from(id_card_sex::IdCardSexFunc::new()),
        ScalarUDF::from(id_card_region::IdCardRegionFunc::new()),
        ScalarUDF::from(id_card_age::IdCardAgeFunc::new()),
        ScalarUDF::from(id_card_upgrade::IdCardUpgradeFunc::new()),
        ScalarUDF::from(uscc_valid::UsccValidFunc::new()),
        ScalarUDF::from(uscc_region::UsccRegionFunc::new()),
        ScalarUDF::from(uscc_entity_type::UsccEntityTypeFunc::new()),
        ScalarUDF::from(district_name::DistrictNameFunc::new()),
        ScalarUDF::from(phone_valid::PhoneValidFunc::new()),
        ScalarUDF::from(wgs84_to_gcj02::Wgs84ToGcj02Func::new()),
        ScalarUDF::from(gcj02_to_wgs84::Gcj02ToWgs84Func::new()),
        ScalarUDF::from(gcj02_to_bd09::Gcj02ToBd09Func::new()),
        ScalarUDF::from(bd09_to_gcj02::Bd09ToGcj02Func::new()),
        ScalarUDF::from(geo_distance_m::GeoDistanceMFunc::new()),
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
