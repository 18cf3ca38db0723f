//! Masks that another column undoes. A mask that keeps part of a value hides the rest; when
//! the same principal's view of the dataset shows that rest in another column, the mask
//! hides nothing. A resident ID number (GB 11643) is six characters of division code, eight
//! of date of birth, three of sequence (the last of them odd for men) and a check character
//! computed from the other seventeen: `mask_id_card` keeps 6 + 4 and hides exactly the date
//! of birth, so a raw `birth_date` beside it rebuilds every ID number.
//!
//! The pairs checked: an ID number kept in part (`mask_id_card`, `mask_keep`) against a date
//! of birth shown raw (its characters 7–14) and against a sex shown raw (the parity of its
//! 17th character); when only the check character would remain hidden, it is derivable
//! too. A column is an ID number when `mask_id_card` masks it or its name says so
//! (`id_card`, `…_id_card`, `id_no`, `id_number`, `sfzh`); a date of birth when its name
//! contains `birth` or is `dob` / `csrq`; a sex when it is `sex`, `gender` or `xb`. `bund
//! check` prints what it finds as warnings.

use std::collections::BTreeMap;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::Expr;

use std::collections::HashMap;
use std::sync::Arc;

use bund_catalogs::Catalog;

use super::policy::{Access, ScanPolicy};

/// Length of a resident ID number.
const ID_LEN: usize = 18;

fn is_id_column(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "id_card"
        || n.ends_with("_id_card")
        || matches!(n.as_str(), "id_no" | "id_number" | "idno" | "sfzh")
}

fn is_birth_column(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("birth") || matches!(n.as_str(), "dob" | "csrq")
}

fn is_sex_column(name: &str) -> bool {
    matches!(name.to_ascii_lowercase().as_str(), "sex" | "gender" | "xb")
}

/// The characters (1-based) of an ID number a mask hides while it keeps others; `None` for
/// masks that keep nothing (a token, NULL) or that are not understood.
fn hidden_by(mask: &Expr) -> Option<(String, Vec<usize>)> {
    let Expr::ScalarFunction(f) = mask.clone().unalias_nested().data else {
        return None;
    };
    let int = |e: Option<&Expr>| match e {
        Some(Expr::Literal(v, _)) => v
            .cast_to(&datafusion::arrow::datatypes::DataType::Int64)
            .ok()
            .and_then(|v| match v {
                ScalarValue::Int64(Some(n)) => usize::try_from(n).ok(),
                _ => None,
            }),
        _ => None,
    };
    let (head, tail) = match f.name() {
        "mask_id_card" => (6, 4),
        "mask_keep" => (int(f.args.get(1))?, int(f.args.get(2))?),
        _ => return None,
    };
    let hidden: Vec<usize> = (head + 1..=ID_LEN.saturating_sub(tail)).collect();
    (!hidden.is_empty()).then(|| (f.name().to_string(), hidden))
}

/// Ranges such as `7–14` from sorted positions.
fn ranges(positions: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < positions.len() {
        let start = positions[i];
        let mut end = start;
        while i + 1 < positions.len() && positions[i + 1] == end + 1 {
            i += 1;
            end = positions[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}–{end}")
        });
        i += 1;
    }
    out.join(", ")
}

/// What one policy lets one principal rebuild, as a warning without the principal's name.
fn findings(key: &str, columns: &[String], policy: &ScanPolicy) -> Vec<String> {
    let raw = |c: &String| !policy.masks.contains_key(c) && !policy.denied.contains(c);
    let birth: Vec<&String> = columns
        .iter()
        .filter(|c| is_birth_column(c) && raw(c))
        .collect();
    let sex: Vec<&String> = columns
        .iter()
        .filter(|c| is_sex_column(c) && raw(c))
        .collect();
    let mut out = Vec::new();
    for (column, mask) in &policy.masks {
        let Some((function, hidden)) = hidden_by(mask) else {
            continue;
        };
        let by_name = is_id_column(column);
        if !(by_name || function == "mask_id_card") {
            continue;
        }
        let mut shown: Vec<(usize, String)> = Vec::new();
        for b in &birth {
            for p in 7..=14 {
                if hidden.contains(&p) {
                    shown.push((p, format!("{b} (the date of birth)")));
                }
            }
        }
        for s in &sex {
            if hidden.contains(&17) {
                shown.push((17, format!("{s} (odd or even)")));
            }
        }
        if shown.is_empty() {
            continue;
        }
        let known: Vec<usize> = {
            let mut k: Vec<usize> = shown.iter().map(|(p, _)| *p).collect();
            k.sort_unstable();
            k.dedup();
            k
        };
        let rest: Vec<usize> = hidden
            .iter()
            .copied()
            .filter(|p| !known.contains(p))
            .collect();
        let whole = rest.is_empty() || rest == [ID_LEN];
        let mut by: Vec<String> = shown.into_iter().map(|(_, by)| by).collect();
        by.sort();
        by.dedup();
        out.push(format!(
            "{key}: {column} is masked with {function}, which hides characters {} of an ID number, but {} shows {} raw{}",
            ranges(&hidden),
            by.join(" and "),
            ranges(&known),
            if whole {
                "; the whole ID number can be rebuilt (the check character follows from the rest): mask that column too (mask_date_year keeps the year), or keep fewer characters of the ID number".to_string()
            } else {
                format!("; only characters {} stay hidden", ranges(&rest))
            }
        ));
    }
    out
}

/// Every mask of the security catalog that another column of the same principal's view
/// undoes, one line per finding, naming the principals it concerns.
pub(crate) fn derivable_masks(
    catalog: &Catalog,
    access: &HashMap<String, Arc<Access>>,
) -> Vec<String> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut principals: Vec<String> = catalog
        .security
        .principals()
        .map(|p| p.id.clone())
        .collect();
    principals.extend(catalog.security.anonymous().map(|p| p.id.clone()));
    for id in principals {
        let Some(access) = access.get(&id) else {
            continue;
        };
        for dataset in &catalog.datasets {
            let key = dataset.key();
            let Some(policy) = access.policy(&key) else {
                continue;
            };
            let columns: Vec<String> = dataset
                .arrow_schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            for finding in findings(&key, &columns, policy) {
                let who = found.entry(finding).or_default();
                if !who.contains(&id) {
                    who.push(id.clone());
                }
            }
        }
    }
    found
        .into_iter()
        .map(|(finding, who)| format!("{finding} (for {})", who.join(", ")))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use datafusion::logical_expr::{col, lit};
    use datafusion::prelude::Expr;

    use super::*;

    fn call(name: &str, args: Vec<Expr>) -> Expr {
        Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
            std::sync::Arc::new(named(name)),
            args,
        ))
    }

    /// A stand-in with the function's name: the check reads names and literal arguments.
    fn named(name: &str) -> datafusion::logical_expr::ScalarUDF {
        datafusion::logical_expr::ScalarUDF::new_from_impl(Named(name.to_string()))
    }

    #[derive(Debug, PartialEq, Eq, Hash)]
    struct Named(String);

    impl datafusion::logical_expr::ScalarUDFImpl for Named {
        fn name(&self) -> &str {
            &self.0
        }
        fn signature(&self) -> &datafusion::logical_expr::Signature {
            static S: std::sync::LazyLock<datafusion::logical_expr::Signature> =
                std::sync::LazyLock::new(|| {
                    datafusion::logical_expr::Signature::variadic_any(
                        datafusion::logical_expr::Volatility::Immutable,
                    )
                });
            &S
        }
        fn return_type(
            &self,
            _: &[datafusion::arrow::datatypes::DataType],
        ) -> datafusion::common::Result<datafusion::arrow::datatypes::DataType> {
            Ok(datafusion::arrow::datatypes::DataType::Utf8)
        }
        fn invoke_with_args(
            &self,
            _: datafusion::logical_expr::ScalarFunctionArgs,
        ) -> datafusion::common::Result<datafusion::logical_expr::ColumnarValue> {
            datafusion::common::not_impl_err!("a stand-in")
        }
    }

    fn policy(masks: &[(&str, Expr)], denied: &[&str]) -> ScanPolicy {
        ScanPolicy {
            row_filter: None,
            masks: masks
                .iter()
                .map(|(c, e)| ((*c).to_string(), e.clone()))
                .collect::<BTreeMap<_, _>>(),
            denied: denied
                .iter()
                .map(|c| (*c).to_string())
                .collect::<BTreeSet<_>>(),
            applied: vec![],
        }
    }

    fn residents() -> Vec<String> {
        ["id_card", "name", "sex", "birth_date", "phone"]
            .iter()
            .map(|c| (*c).to_string())
            .collect()
    }

    #[test]
    fn an_id_number_masked_to_six_and_four_beside_a_raw_birth_date_is_rebuildable() {
        let p = policy(
            &[("id_card", call("mask_id_card", vec![col("id_card")]))],
            &[],
        );
        let f = findings("police.residents", &residents(), &p);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].contains("characters 7–14") && f[0].contains("birth_date"),
            "{f:?}"
        );
        assert!(f[0].contains("whole ID number can be rebuilt"), "{f:?}");
    }

    #[test]
    fn a_masked_or_denied_birth_date_leaves_the_mask_alone() {
        let masked = policy(
            &[
                ("id_card", call("mask_id_card", vec![col("id_card")])),
                (
                    "birth_date",
                    call("mask_date_year", vec![col("birth_date")]),
                ),
            ],
            &[],
        );
        assert!(findings("police.residents", &residents(), &masked).is_empty());
        let denied = policy(
            &[("id_card", call("mask_id_card", vec![col("id_card")]))],
            &["birth_date"],
        );
        assert!(findings("police.residents", &residents(), &denied).is_empty());
        let token = policy(
            &[(
                "id_card",
                call("mask_token", vec![col("id_card"), lit("k")]),
            )],
            &[],
        );
        assert!(findings("police.residents", &residents(), &token).is_empty());
    }

    #[test]
    fn a_raw_sex_shows_the_parity_of_a_hidden_seventeenth_character() {
        let p = policy(
            &[
                (
                    "id_card",
                    call("mask_keep", vec![col("id_card"), lit(14_i64), lit(0_i64)]),
                ),
                (
                    "birth_date",
                    call("mask_date_year", vec![col("birth_date")]),
                ),
            ],
            &[],
        );
        let f = findings("police.residents", &residents(), &p);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].contains("sex (odd or even)") && f[0].contains("only characters 15–16, 18"),
            "{f:?}"
        );
    }
}
