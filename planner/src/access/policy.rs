//! Grants and dataset policies from `security.toml`, validated against the loaded datasets,
//! and resolved once per principal into an [`Access`]: the datasets it may name, the
//! columns it may see, and for every protected dataset the row filter and masks that apply
//! to it wherever that dataset is scanned.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider,
};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, ExprSchema, ScalarValue};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::{
    Expr, ExprSchemable, Extension, LogicalPlan, LogicalPlanBuilder, col, lit,
};

use bund_catalogs::{
    ANONYMOUS, AttrValue, ConfigErrors, Dataset, DatasetKind, OpenLevel, Principal, RawMask,
    RawPolicy, RawRule, SecurityCatalog,
};

use super::sealed::{DatasetScan, SealedTable};

/// Masking functions from the most restrictive to the least, when `security.toml` does not
/// declare `mask_order`. Denying a column is more restrictive than any mask.
pub const DEFAULT_MASK_ORDER: &[&str] = &[
    "mask_null",
    "mask_token",
    "mask_date_year",
    "mask_round",
    "mask_address_cn",
    "mask_id_card",
    "mask_phone",
    "mask_email",
    "mask_name_cn",
    "mask_keep",
];

/// Placeholder prefix an attribute reference `${principal.x}` becomes while parsing.
const ATTR_PREFIX: &str = "$bund_principal_";

/// The tag that marks personal data; such a dataset must have a policy.
const PERSONAL_TAG: &str = "personal";

/// What applies to one principal's scans of one dataset.
#[derive(Debug, Clone, Default)]
pub struct ScanPolicy {
    /// Over the dataset's raw columns; `None` = every row.
    pub row_filter: Option<Expr>,
    /// Column → masked value over the raw columns (same type as the column).
    pub masks: BTreeMap<String, Expr>,
    /// Columns that do not exist for the principal (NULL inside views that read them).
    pub denied: BTreeSet<String>,
    /// Policy and rule ids applied, for the audit log.
    pub applied: Vec<String>,
}

impl ScanPolicy {
    /// True when the scan reads raw rows and columns.
    pub fn is_identity(&self) -> bool {
        self.row_filter.is_none() && self.masks.is_empty() && self.denied.is_empty()
    }
}

/// A dataset as one principal sees it.
#[derive(Debug, Clone)]
pub struct VisibleDataset {
    pub dataset: Arc<Dataset>,
    /// The dataset's columns less those denied to the principal.
    pub schema: SchemaRef,
}

/// Everything one principal may do, resolved at load.
#[derive(Debug)]
pub struct Access {
    pub principal: Arc<Principal>,
    /// Granted datasets, in catalog order.
    pub datasets: Vec<VisibleDataset>,
    policies: HashMap<String, Arc<ScanPolicy>>,
    catalog: Arc<dyn CatalogProvider>,
}

impl Access {
    /// The policy for this principal's scans of a dataset (`schema.name`); `None` when the
    /// dataset has no policy.
    pub fn policy(&self, key: &str) -> Option<&Arc<ScanPolicy>> {
        self.policies.get(key)
    }

    /// The `bund` catalog of this principal: granted datasets only, visible columns only.
    pub fn catalog(&self) -> Arc<dyn CatalogProvider> {
        Arc::clone(&self.catalog)
    }

    pub fn visible(&self, schema: &str, name: &str) -> Option<&VisibleDataset> {
        self.datasets
            .iter()
            .find(|d| d.dataset.schema == schema && d.dataset.name == name)
    }

    /// Schema names that hold at least one visible dataset, in catalog order.
    pub fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for d in &self.datasets {
            if !names.contains(&d.dataset.schema) {
                names.push(d.dataset.schema.clone());
            }
        }
        names
    }
}

/// One mask of a rule: `function(column, args…)`.
#[derive(Debug, Clone, PartialEq)]
struct MaskSpec {
    function: String,
    args: Vec<ScalarValue>,
    /// Position in the mask order; lower is more restrictive.
    rank: usize,
    expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
enum ColumnRule {
    Deny,
    Mask(MaskSpec),
}

impl ColumnRule {
    fn rank(&self) -> usize {
        match self {
            Self::Deny => 0,
            Self::Mask(m) => m.rank + 1,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Deny => "deny".to_string(),
            Self::Mask(m) if m.args.is_empty() => m.function.clone(),
            Self::Mask(m) => {
                let args: Vec<String> = m.args.iter().map(ToString::to_string).collect();
                format!("{}({})", m.function, args.join(", "))
            }
        }
    }
}

#[derive(Debug)]
struct Rule {
    label: String,
    /// `rule #n` (or `default rule`), for errors found while resolving principals.
    entry: String,
    roles: Vec<String>,
    principals: Vec<String>,
    /// With attribute placeholders still in it.
    row_filter: Option<Expr>,
    columns: BTreeMap<String, ColumnRule>,
}

impl Rule {
    fn matches(&self, p: &Principal) -> bool {
        self.principals.contains(&p.id) || self.roles.iter().any(|r| p.roles.contains(r))
    }
}

#[derive(Debug)]
struct Policy {
    id: String,
    dataset: Arc<Dataset>,
    restrictions: Vec<Expr>,
    rules: Vec<Rule>,
    default: Option<Rule>,
}

#[derive(Debug)]
struct Grant {
    roles: Vec<String>,
    principals: Vec<String>,
    datasets: BTreeSet<String>,
}

/// Validates grants and policies and resolves every principal's access.
pub(crate) struct Resolver<'a> {
    pub(crate) path: &'a Path,
    pub(crate) security: &'a SecurityCatalog,
    /// Datasets left out because their source could not be reached at load: grants and
    /// policies naming them are skipped (the load's warnings say why), not refused.
    pub(crate) unavailable: &'a HashSet<String>,
    pub(crate) datasets: &'a [Arc<Dataset>],
    /// A session with every Bund function, for parsing filters and finding masks.
    pub(crate) state: &'a SessionState,
}

impl Resolver<'_> {
    pub(crate) fn resolve(&self, errors: &mut ConfigErrors) -> HashMap<String, Arc<Access>> {
        let mask_order = self.mask_order(errors);
        let grants = self.grants(errors);
        let mut policies = Vec::new();
        let mut ids = HashSet::new();
        let mut covered = HashSet::new();
        for raw in self.security.policies() {
            let entry = format!("policy \"{}\"", raw.id);
            if !ids.insert(raw.id.as_str()) {
                errors.push(self.path, &entry, "id", "duplicate policy id");
                continue;
            }
            if let Some(p) = self.policy(raw, &entry, &mask_order, errors) {
                if !covered.insert(p.dataset.key()) {
                    errors.push(
                        self.path,
                        &entry,
                        "dataset",
                        format!(
                            "{} already has a policy; put all of its rules in one",
                            raw.dataset
                        ),
                    );
                    continue;
                }
                policies.push(p);
            }
        }
        for d in self.datasets {
            if d.tags.iter().any(|t| t == PERSONAL_TAG)
                && d.kind == DatasetKind::Table
                && !covered.contains(&d.key())
            {
                errors.push(
                    self.path,
                    "",
                    "policy",
                    format!(
                        "{} is tagged `personal` but has no policy; add a [[policy]] with a default rule",
                        d.key()
                    ),
                );
            }
        }

        let mut out = HashMap::new();
        let principals = self.security.principals().chain(self.security.anonymous());
        for principal in principals {
            match self.access(&principal, &grants, &policies) {
                Ok(access) => {
                    out.insert(principal.id.clone(), Arc::new(access));
                }
                Err((entry, field, message)) => {
                    errors.push(self.path, entry, field, message);
                }
            }
        }
        out
    }

    fn mask_order(&self, errors: &mut ConfigErrors) -> Vec<String> {
        let Some(order) = self.security.mask_order() else {
            return DEFAULT_MASK_ORDER.iter().map(ToString::to_string).collect();
        };
        let mut seen = HashSet::new();
        for f in order {
            if !seen.insert(f.as_str()) {
                errors.push(
                    self.path,
                    "",
                    "mask_order",
                    format!("`{f}` is listed twice"),
                );
            }
            if !self.is_mask_function(f) {
                errors.push(
                    self.path,
                    "",
                    "mask_order",
                    format!("`{f}` is not a masking function"),
                );
            }
        }
        order.to_vec()
    }

    fn is_mask_function(&self, name: &str) -> bool {
        name.starts_with("mask_") && self.state.scalar_functions().contains_key(name)
    }

    fn dataset(&self, key: &str) -> Option<&Arc<Dataset>> {
        self.datasets.iter().find(|d| d.key() == key)
    }

    fn check_roles(&self, roles: &[String], entry: &str, errors: &mut ConfigErrors) {
        for r in roles {
            if r != ANONYMOUS && !self.security.has_role(r) {
                errors.push(
                    self.path,
                    entry,
                    "roles",
                    format!("unknown role `{r}`; declare it with [[role]]"),
                );
            }
        }
    }

    fn check_principals(&self, ids: &[String], entry: &str, errors: &mut ConfigErrors) {
        for id in ids {
            if self.security.principal(id).is_none() {
                errors.push(
                    self.path,
                    entry,
                    "principals",
                    format!("unknown principal `{id}`"),
                );
            }
        }
    }

    fn grants(&self, errors: &mut ConfigErrors) -> Vec<Grant> {
        let mut out = Vec::new();
        for (i, g) in self.security.grants().iter().enumerate() {
            let entry = format!("grant #{}", i + 1);
            if g.roles.is_empty() && g.principals.is_empty() {
                errors.push(
                    self.path,
                    &entry,
                    "roles",
                    "grants to no role and no principal",
                );
            }
            if g.datasets.is_empty() && g.schemas.is_empty() {
                errors.push(
                    self.path,
                    &entry,
                    "datasets",
                    "grants no dataset and no schema",
                );
            }
            self.check_roles(&g.roles, &entry, errors);
            self.check_principals(&g.principals, &entry, errors);
            let mut keys = BTreeSet::new();
            for name in &g.datasets {
                match self.dataset(name) {
                    Some(d) => {
                        keys.insert(d.key());
                    }
                    None if self.unavailable.contains(name) => {}
                    None => errors.push(
                        self.path,
                        &entry,
                        "datasets",
                        format!("unknown dataset `{name}`; write it as schema.name"),
                    ),
                }
            }
            for schema in &g.schemas {
                let before = keys.len();
                for d in self.datasets.iter().filter(|d| d.schema == *schema) {
                    keys.insert(d.key());
                }
                if keys.len() == before && !self.datasets.iter().any(|d| d.schema == *schema) {
                    errors.push(
                        self.path,
                        &entry,
                        "schemas",
                        format!("unknown schema `{schema}`"),
                    );
                }
            }
            if g.roles.iter().any(|r| r == ANONYMOUS) || g.principals.iter().any(|p| p == ANONYMOUS)
            {
                for key in &keys {
                    if let Some(d) = self.dataset(key)
                        && d.open_level != OpenLevel::Unconditional
                    {
                        errors.push(
                            self.path,
                            &entry,
                            "datasets",
                            format!(
                                "{key} is not unconditionally open (open_level = {}); anonymous users may only be granted unconditionally open datasets",
                                d.open_level.as_str()
                            ),
                        );
                    }
                }
            }
            out.push(Grant {
                roles: g.roles.clone(),
                principals: g.principals.clone(),
                datasets: keys,
            });
        }
        out
    }

    fn policy(
        &self,
        raw: &RawPolicy,
        entry: &str,
        mask_order: &[String],
        errors: &mut ConfigErrors,
    ) -> Option<Policy> {
        let Some(dataset) = self.dataset(&raw.dataset) else {
            if self.unavailable.contains(&raw.dataset) {
                return None;
            }
            errors.push(
                self.path,
                entry,
                "dataset",
                format!("unknown dataset `{}`; write it as schema.name", raw.dataset),
            );
            return None;
        };
        let schema = dataset.arrow_schema();
        let df_schema = match DFSchema::try_from(schema.as_ref().clone()) {
            Ok(s) => s,
            Err(e) => {
                errors.push(self.path, entry, "dataset", e.strip_backtrace());
                return None;
            }
        };
        for c in &raw.sensitive {
            if schema.field_with_name(c).is_err() {
                errors.push(
                    self.path,
                    entry,
                    "sensitive",
                    format!("{} has no column `{c}`", raw.dataset),
                );
            }
        }
        let mut restrictions = Vec::new();
        for (i, r) in raw.restrictions.iter().enumerate() {
            let field = format!("restrictions[{i}]");
            match self.filter_expr(r, &df_schema) {
                Ok(e) if has_attributes(&e) => errors.push(
                    self.path,
                    entry,
                    &field,
                    "restrictions apply to everyone and cannot use ${principal.…}; put it in a rule's row_filter",
                ),
                Ok(e) => match check_boolean(&e, &df_schema) {
                    Ok(()) => restrictions.push(e),
                    Err(m) => errors.push(self.path, entry, &field, m),
                },
                Err(m) => errors.push(self.path, entry, &field, m),
            }
        }
        let mut rules = Vec::new();
        let mut default = None;
        for (i, r) in raw.rule.iter().enumerate() {
            let rule_entry = format!("{entry} rule #{}", i + 1);
            let Some(rule) = self.rule(
                raw,
                r,
                i,
                &rule_entry,
                &df_schema,
                &schema,
                mask_order,
                errors,
            ) else {
                continue;
            };
            if r.default {
                if default.is_some() {
                    errors.push(
                        self.path,
                        &rule_entry,
                        "default",
                        "a policy has one default rule",
                    );
                }
                default = Some(rule);
            } else {
                rules.push(rule);
            }
        }
        if !raw.sensitive.is_empty() && default.is_none() {
            errors.push(
                self.path,
                entry,
                "rule",
                "the dataset has sensitive columns but no default rule; add one with `default = true` that masks or denies them",
            );
        }
        if let Some(d) = &default {
            for c in &raw.sensitive {
                if !d.columns.contains_key(c) {
                    errors.push(
                        self.path,
                        entry,
                        "sensitive",
                        format!(
                            "the default rule shows sensitive column `{c}` raw; mask or deny it"
                        ),
                    );
                }
            }
        }
        // Two rules can apply to one principal with both roles: the declared order must rank
        // their masks of every column, or the catalog is ambiguous.
        for (i, a) in rules.iter().enumerate() {
            for b in &rules[i + 1..] {
                for (column, ra) in &a.columns {
                    if let Some(rb) = b.columns.get(column)
                        && ra != rb
                        && ra.rank() == rb.rank()
                    {
                        errors.push(
                            self.path,
                            entry,
                            "rule",
                            format!(
                                "{} and {} mask column `{column}` as {} and {}, which mask_order cannot rank; a principal holding both roles would be ambiguous",
                                a.label,
                                b.label,
                                ra.describe(),
                                rb.describe()
                            ),
                        );
                    }
                }
            }
        }
        Some(Policy {
            id: raw.id.clone(),
            dataset: Arc::clone(dataset),
            restrictions,
            rules,
            default,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn rule(
        &self,
        policy: &RawPolicy,
        raw: &RawRule,
        index: usize,
        entry: &str,
        df_schema: &DFSchema,
        schema: &Schema,
        mask_order: &[String],
        errors: &mut ConfigErrors,
    ) -> Option<Rule> {
        let before = errors.len();
        if raw.default && !(raw.roles.is_empty() && raw.principals.is_empty()) {
            errors.push(
                self.path,
                entry,
                "default",
                "the default rule applies to everyone no other rule names; remove its roles and principals",
            );
        }
        if !raw.default && raw.roles.is_empty() && raw.principals.is_empty() {
            errors.push(
                self.path,
                entry,
                "roles",
                "names no role and no principal; add roles, principals or `default = true`",
            );
        }
        self.check_roles(&raw.roles, entry, errors);
        self.check_principals(&raw.principals, entry, errors);
        let row_filter = match &raw.row_filter {
            None => None,
            Some(text) => match self.filter_expr(text, df_schema).and_then(|e| {
                check_filter_shape(&e)?;
                // Without attributes the filter is the same for everyone: check it once.
                if !has_attributes(&e) {
                    check_boolean(&e, df_schema)?;
                }
                Ok(e)
            }) {
                Ok(e) => Some(e),
                Err(m) => {
                    errors.push(self.path, entry, "row_filter", m);
                    None
                }
            },
        };
        let mut columns = BTreeMap::new();
        for c in &raw.deny {
            if schema.field_with_name(c).is_err() {
                errors.push(
                    self.path,
                    entry,
                    "deny",
                    format!("{} has no column `{c}`", policy.dataset),
                );
            }
            columns.insert(c.clone(), ColumnRule::Deny);
        }
        for (c, mask) in &raw.masks {
            let field = format!("masks.{c}");
            let Ok(column_field) = schema.field_with_name(c) else {
                errors.push(
                    self.path,
                    entry,
                    &field,
                    format!("{} has no column `{c}`", policy.dataset),
                );
                continue;
            };
            if columns.contains_key(c) {
                errors.push(
                    self.path,
                    entry,
                    &field,
                    "the column is denied by this rule; mask it or deny it, not both",
                );
                continue;
            }
            match self.mask(c, column_field.data_type(), mask, df_schema, mask_order) {
                Ok(spec) => {
                    columns.insert(c.clone(), ColumnRule::Mask(spec));
                }
                Err(m) => errors.push(self.path, entry, &field, m),
            }
        }
        if errors.len() != before {
            return None;
        }
        let label = if raw.default {
            format!("{}/default", policy.id)
        } else {
            let mut who: Vec<&str> = raw.roles.iter().map(String::as_str).collect();
            who.extend(raw.principals.iter().map(String::as_str));
            format!("{}/{}#{}", policy.id, who.join("+"), index + 1)
        };
        Some(Rule {
            label,
            entry: format!("rule #{}", index + 1),
            roles: raw.roles.clone(),
            principals: raw.principals.clone(),
            row_filter,
            columns,
        })
    }

    fn mask(
        &self,
        column: &str,
        column_type: &DataType,
        raw: &RawMask,
        df_schema: &DFSchema,
        mask_order: &[String],
    ) -> Result<MaskSpec, String> {
        let function = raw.function();
        if !self.is_mask_function(function) {
            return Err(format!(
                "`{function}` is not a masking function (mask_keep, mask_id_card, mask_phone, mask_email, mask_name_cn, mask_address_cn, mask_date_year, mask_round, mask_null, mask_token)"
            ));
        }
        let Some(rank) = mask_order.iter().position(|f| f == function) else {
            return Err(format!(
                "`{function}` is not in mask_order; add it so that overlapping rules can be ranked"
            ));
        };
        let args = raw.literal_args()?;
        if function == "mask_token" {
            match args.first() {
                Some(ScalarValue::Utf8(Some(key))) if self.security.secrets().contains(key) => {}
                Some(ScalarValue::Utf8(Some(key))) => {
                    return Err(format!(
                        "mask_token key `{key}` is not declared; add a [[secret]] named `{key}`"
                    ));
                }
                _ => {
                    return Err(
                        "mask_token takes the name of a [[secret]]: args = [\"<secret name>\"]"
                            .to_string(),
                    );
                }
            }
        }
        let udf = Arc::clone(&self.state.scalar_functions()[function]);
        let mut call_args = vec![col(column)];
        call_args.extend(args.iter().cloned().map(lit));
        let expr = udf.call(call_args);
        let out = expr
            .get_type(df_schema)
            .map_err(|e| format!("{function} cannot mask `{column}`: {}", e.strip_backtrace()))?;
        if out != *column_type {
            return Err(format!(
                "{function} turns `{column}` ({column_type}) into {out}; a mask must keep the column's type"
            ));
        }
        Ok(MaskSpec {
            function: function.to_string(),
            args,
            rank,
            expr: expr.alias(column),
        })
    }

    /// Parses a filter over the dataset's columns, with `${principal.x}` as placeholders.
    fn filter_expr(&self, text: &str, df_schema: &DFSchema) -> Result<Expr, String> {
        let sql = attribute_placeholders(text)?;
        self.state
            .create_logical_expr(&sql, df_schema)
            .map_err(|e| format!("does not plan: {}", e.strip_backtrace()))
    }

    fn access(
        &self,
        principal: &Arc<Principal>,
        grants: &[Grant],
        policies: &[Policy],
    ) -> Result<Access, (String, String, String)> {
        let mut policy_map = HashMap::new();
        for p in policies {
            let resolved = resolve(p, principal).map_err(|(rule, m)| {
                (
                    format!("policy \"{}\" {rule}", p.id),
                    "row_filter".to_string(),
                    format!("for principal `{}`: {m}", principal.id),
                )
            })?;
            policy_map.insert(p.dataset.key(), Arc::new(resolved));
        }
        let granted: BTreeSet<&String> = grants
            .iter()
            .filter(|g| {
                g.principals.iter().any(|id| *id == principal.id)
                    || g.roles.iter().any(|r| principal.roles.contains(r))
            })
            .flat_map(|g| g.datasets.iter())
            .collect();
        let mut datasets = Vec::new();
        for d in self.datasets {
            let key = d.key();
            if !granted.contains(&key) {
                continue;
            }
            let full = d.arrow_schema();
            let schema = match policy_map.get(&key) {
                Some(p) if !p.denied.is_empty() => {
                    let fields: Vec<_> = full
                        .fields()
                        .iter()
                        .filter(|f| !p.denied.contains(f.name()))
                        .cloned()
                        .collect();
                    Arc::new(Schema::new_with_metadata(fields, full.metadata().clone()))
                }
                _ => full,
            };
            datasets.push(VisibleDataset {
                dataset: Arc::clone(d),
                schema,
            });
        }
        let catalog = sealed_catalog(&datasets)
            .map_err(|m| (format!("principal \"{}\"", principal.id), String::new(), m))?;
        Ok(Access {
            principal: Arc::clone(principal),
            datasets,
            policies: policy_map,
            catalog,
        })
    }
}

/// The catalog of sealed tables for these datasets.
pub(crate) fn sealed_catalog(
    datasets: &[VisibleDataset],
) -> Result<Arc<dyn CatalogProvider>, String> {
    let mut schemas: BTreeMap<&str, Arc<MemorySchemaProvider>> = BTreeMap::new();
    for v in datasets {
        let d = &v.dataset;
        let schema = schemas
            .entry(d.schema.as_str())
            .or_insert_with(|| Arc::new(MemorySchemaProvider::new()));
        let key: Arc<str> = Arc::from(d.key());
        let view =
            match &d.view {
                None => None,
                Some(plan) => Some(view_plan(&key, plan, &v.schema).map_err(|e| {
                    format!("cannot build the view of {key}: {}", e.strip_backtrace())
                })?),
            };
        let table = SealedTable::new(key, Arc::clone(&v.schema), view);
        schema
            .register_table(d.name.clone(), Arc::new(table))
            .map_err(|e| e.strip_backtrace())?;
    }
    let catalog = MemoryCatalogProvider::new();
    for (name, schema) in schemas {
        catalog
            .register_schema(name, schema)
            .map_err(|e| e.strip_backtrace())?;
    }
    Ok(Arc::new(catalog))
}

/// A view's plan under its marker, projected to the visible columns.
fn view_plan(
    key: &Arc<str>,
    plan: &LogicalPlan,
    visible: &SchemaRef,
) -> datafusion::common::Result<LogicalPlan> {
    let marked = LogicalPlan::Extension(Extension {
        node: Arc::new(DatasetScan {
            key: Arc::clone(key),
            input: plan.clone(),
        }),
    });
    if visible.fields().len() == plan.schema().fields().len() {
        return Ok(marked);
    }
    let exprs: Vec<Expr> = plan
        .schema()
        .iter()
        .filter(|(_, f)| visible.field_with_name(f.name()).is_ok())
        .map(|(q, f)| Expr::Column(datafusion::common::Column::from((q, f))))
        .collect();
    LogicalPlanBuilder::from(marked).project(exprs)?.build()
}

/// True when the end of `sql` lies inside a quoted string or a quoted name.
fn inside_quotes(sql: &str) -> bool {
    let (mut single, mut double) = (false, false);
    for c in sql.chars() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            _ => {}
        }
    }
    single || double
}

/// `${principal.x}` → `($bund_principal_x)`: a placeholder, bound later as a typed literal.
/// A reference inside quotes is refused: it would be the text of its own name, compared
/// with nothing the author meant.
fn attribute_placeholders(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        if inside_quotes(&out) {
            let reference = rest[start..].split('}').next().unwrap_or_default();
            return Err(format!(
                "`{reference}}}` is inside quotes, where it is text, not the attribute; write it without quotes (district = ${{principal.home}})"
            ));
        }
        let after = &rest[start..];
        let Some(inner) = after.strip_prefix("${") else {
            return Err(
                "`$` may only start an attribute reference such as ${principal.districts}"
                    .to_string(),
            );
        };
        let Some(end) = inner.find('}') else {
            return Err("unclosed `${`".to_string());
        };
        let reference = &inner[..end];
        let Some(name) = reference.strip_prefix("principal.") else {
            return Err(format!(
                "`${{{reference}}}` is not an attribute reference; write ${{principal.<attribute>}}"
            ));
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(format!(
                "attribute name `{name}` must be lower-case letters, digits and _"
            ));
        }
        out.push('(');
        out.push_str(ATTR_PREFIX);
        out.push_str(name);
        out.push(')');
        rest = &inner[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn has_attributes(e: &Expr) -> bool {
    e.exists(|e| Ok(matches!(e, Expr::Placeholder(p) if p.id.starts_with(ATTR_PREFIX))))
        .unwrap_or(true)
}

/// A row filter may use the dataset's columns, literals, attributes and deterministic
/// scalar functions: no aggregate, window, subquery or volatile function.
fn check_filter_shape(e: &Expr) -> Result<(), String> {
    let mut problem = None;
    let _ = e.apply(|e| {
        let found = match e {
            Expr::AggregateFunction(_) => Some("an aggregate function"),
            Expr::WindowFunction(_) => Some("a window function"),
            Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) => Some("a subquery"),
            Expr::ScalarFunction(f)
                if f.func.signature().volatility
                    == datafusion::logical_expr::Volatility::Volatile =>
            {
                Some("a volatile function")
            }
            Expr::Placeholder(p) if !p.id.starts_with(ATTR_PREFIX) => Some("a parameter"),
            _ => None,
        };
        if let Some(what) = found {
            problem = Some(format!("a row filter cannot use {what}"));
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    match problem {
        Some(p) => Err(p),
        None => Ok(()),
    }
}

fn check_boolean(e: &Expr, schema: &DFSchema) -> Result<(), String> {
    check_filter_shape(e)?;
    match e.get_type(schema as &dyn ExprSchema) {
        Ok(DataType::Boolean) => Ok(()),
        Ok(other) => Err(format!("must be a boolean expression, is {other}")),
        Err(e) => Err(format!("does not plan: {}", e.strip_backtrace())),
    }
}

/// Binds a principal's attributes into a filter. `None` when an attribute it uses is
/// missing or an empty list: the filter then admits no rows.
fn bind(e: &Expr, p: &Principal) -> Result<Option<Expr>, String> {
    let mut missing = false;
    let mut error = None;
    let value = |id: &str| -> Option<&AttrValue> {
        id.strip_prefix(ATTR_PREFIX)
            .and_then(|n| p.attributes.get(n))
    };
    let scalar = |v: &AttrValue| -> Option<Expr> {
        match v {
            AttrValue::Str(s) => Some(lit(s.clone())),
            AttrValue::Int(i) => Some(lit(*i)),
            AttrValue::Bool(b) => Some(lit(*b)),
            AttrValue::List(_) => None,
        }
    };
    // Top-down, so that an IN list is expanded before its placeholder is looked at alone.
    let bound = e
        .clone()
        .transform_down(|e| {
            Ok(match e {
                Expr::InList(InList {
                    expr,
                    list,
                    negated,
                }) if list
                    .iter()
                    .any(|i| matches!(i, Expr::Placeholder(ph) if ph.id.starts_with(ATTR_PREFIX))) =>
                {
                    let mut items = Vec::with_capacity(list.len());
                    for item in list {
                        match &item {
                            Expr::Placeholder(ph) if ph.id.starts_with(ATTR_PREFIX) => {
                                match value(&ph.id) {
                                    None => missing = true,
                                    Some(AttrValue::List(values)) => {
                                        if values.is_empty() {
                                            missing = true;
                                        }
                                        items.extend(values.iter().map(|v| lit(v.clone())));
                                    }
                                    Some(v) => items.extend(scalar(v)),
                                }
                            }
                            _ => items.push(item),
                        }
                    }
                    Transformed::yes(match <[Expr; 1]>::try_from(items) {
                        // `x IN (a)` is `x = a`, NULLs alike; a comparison is what the scan
                        // evaluates fastest (a one-value set is hashed for every row)
                        Ok([item]) if negated => (*expr).not_eq(item),
                        Ok([item]) => (*expr).eq(item),
                        Err(items) => Expr::InList(InList::new(expr, items, negated)),
                    })
                }
                Expr::Placeholder(ph) if ph.id.starts_with(ATTR_PREFIX) => match value(&ph.id) {
                    None => {
                        missing = true;
                        Transformed::yes(lit(ScalarValue::Null))
                    }
                    Some(AttrValue::List(values)) if values.is_empty() => {
                        missing = true;
                        Transformed::yes(lit(ScalarValue::Null))
                    }
                    Some(AttrValue::List(_)) => {
                        let name = ph.id.trim_start_matches(ATTR_PREFIX);
                        error = Some(format!(
                            "attribute `{name}` is a list; use it as `column IN ${{principal.{name}}}`"
                        ));
                        Transformed::no(Expr::Placeholder(ph))
                    }
                    Some(v) => Transformed::yes(scalar(v).unwrap_or_else(|| lit(ScalarValue::Null))),
                },
                other => Transformed::no(other),
            })
        })
        .map_err(|e| e.strip_backtrace())?
        .data;
    if let Some(e) = error {
        return Err(e);
    }
    Ok(if missing { None } else { Some(bound) })
}

/// What one policy means for one principal.
fn resolve(p: &Policy, principal: &Principal) -> Result<ScanPolicy, (String, String)> {
    let matched: Vec<&Rule> = p.rules.iter().filter(|r| r.matches(principal)).collect();
    let matched: Vec<&Rule> = if matched.is_empty() {
        p.default.iter().collect()
    } else {
        matched
    };
    let schema = DFSchema::try_from(p.dataset.arrow_schema().as_ref().clone())
        .map_err(|e| (String::new(), e.strip_backtrace()))?;
    let mut out = ScanPolicy::default();
    if matched.is_empty() && !(p.rules.is_empty() && p.default.is_none()) {
        // Rules exist and none names this principal: default deny.
        out.row_filter = Some(lit(false));
        out.applied.push(format!("{}/no-rule", p.id));
        return Ok(out);
    }
    // Several rules: their row filters are ORed; a rule without one admits every row.
    let mut filters = Vec::new();
    let mut all_rows = matched.is_empty();
    for r in &matched {
        out.applied.push(r.label.clone());
        match &r.row_filter {
            None => all_rows = true,
            Some(f) => match bind(f, principal).map_err(|m| (r.entry.clone(), m))? {
                Some(bound) => {
                    check_boolean(&bound, &schema).map_err(|m| (r.entry.clone(), m))?;
                    filters.push(bound);
                }
                None => filters.push(lit(false)),
            },
        }
    }
    let mut filter = if all_rows {
        None
    } else {
        filters.into_iter().reduce(Expr::or)
    };
    for r in &p.restrictions {
        filter = Some(match filter {
            None => r.clone(),
            Some(f) => f.and(r.clone()),
        });
    }
    if !p.restrictions.is_empty() {
        out.applied.push(format!("{}/restrictions", p.id));
    }
    out.row_filter = filter;
    // Masks: per column the most restrictive of the matched rules; a rule that leaves the
    // column raw ranks last.
    let columns: BTreeSet<&String> = matched.iter().flat_map(|r| r.columns.keys()).collect();
    for c in columns {
        let mut best: Option<&ColumnRule> = None;
        for rule in matched.iter().filter_map(|r| r.columns.get(c)) {
            if best.is_none_or(|b| rule.rank() < b.rank()) {
                best = Some(rule);
            }
        }
        match best {
            Some(ColumnRule::Deny) => {
                out.denied.insert(c.clone());
            }
            Some(ColumnRule::Mask(m)) => {
                out.masks.insert(c.clone(), m.expr.clone());
            }
            None => {}
        }
    }
    Ok(out)
}
