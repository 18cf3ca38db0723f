//! Bounds on what planning one statement may cost, checked before the work they bound:
//!
//! - the statement's size in bytes;
//! - how deep its expressions may nest. sqlparser bounds nested parentheses and subqueries
//!   itself (DataFusion's `sql_parser.recursion_limit`), but parses a chain of operators
//!   (`1+1+…+1`, `a = 1 OR a = 2 OR …`, `… UNION ALL …`) without recursing and hands the
//!   planner a tree as deep as the chain is long; every later pass (type coercion, the
//!   simplifier, physical planning, evaluation) recurses over it. [`check_text`] bounds that
//!   depth from the tokens, before anything is parsed;
//! - how large the plan may grow: a CTE is planned once and inlined at each reference, so
//!   sixteen CTEs that each reference the previous one twice make a plan of 2^16 nodes from
//!   under a kilobyte of SQL. [`check_plan_size`] counts the plan as it will be expanded,
//!   visiting each shared node once, before any rule copies it;
//! - how long planning may take: [`Deadline`] is an analyzer, optimizer and physical
//!   optimizer rule placed between DataFusion's own, so planning stops at the next rule
//!   once the query's deadline has passed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::{AnalyzerRule, OptimizerConfig, OptimizerRule};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::Error;
use crate::scope::Scope;

/// The limits of one statement (the server reads them from its `server.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_statement_bytes: usize,
    pub max_expression_depth: usize,
    pub max_plan_nodes: usize,
}

/// What the server allows the planner: the limits of one statement, the largest output of
/// one call of a function whose result size its arguments choose, over one batch, and the
/// memory queries without credentials may hold together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannerSettings {
    pub limits: Limits,
    pub max_function_output_bytes: u64,
    pub anonymous_memory_limit_bytes: u64,
}

impl Default for PlannerSettings {
    /// The defaults of the server's `server.toml` (its settings take them from here), and
    /// of tests and tools that plan without a server.
    fn default() -> Self {
        Self {
            limits: Limits {
                max_statement_bytes: 4 << 20,
                max_expression_depth: 1_000,
                max_plan_nodes: 10_000,
            },
            max_function_output_bytes: 64 << 20,
            anonymous_memory_limit_bytes: 1 << 30,
        }
    }
}

/// Refuses a statement that is too long, or whose operators could nest deeper than allowed.
///
/// The depth is bounded from the tokens: within one parenthesised (or bracketed) group, the
/// operators and keywords between two commas could all lie on one path of the expression
/// tree, plus the deepest group inside them. That over-counts (`a + 1 FROM t WHERE b = 2`
/// counts every keyword), never under-counts: each node on a path of the tree has a token
/// of its own that is not a literal, a name or a comma.
pub(crate) fn check_text(sql: &str, limits: &Limits) -> Result<(), Error> {
    if sql.len() > limits.max_statement_bytes {
        return Err(Error::Limit {
            message: format!(
                "the statement is {} KiB; at most {} KiB is accepted (bind long value lists as parameters, or split the statement)",
                sql.len().div_ceil(1024),
                limits.max_statement_bytes / 1024
            ),
        });
    }
    let tokens = match Tokenizer::new(&GenericDialect {}, sql).tokenize() {
        Ok(t) => t,
        // the parser reports it, with its position
        Err(_) => return Ok(()),
    };
    let depth = nesting_bound(&tokens);
    if depth > limits.max_expression_depth {
        return Err(Error::Limit {
            message: format!(
                "the statement's expressions nest too deeply (a chain of about {depth} operators; at most {} are accepted): write long OR chains as IN (…), and split long UNION chains",
                limits.max_expression_depth
            ),
        });
    }
    Ok(())
}

/// One parenthesised group while scanning tokens.
#[derive(Default)]
struct Group {
    /// Operators in the current comma-separated segment.
    ops: usize,
    /// The deepest group inside the current segment.
    child: usize,
    /// The deepest segment so far.
    max: usize,
}

impl Group {
    fn end_segment(&mut self) {
        self.max = self.max.max(self.ops + self.child);
        self.ops = 0;
        self.child = 0;
    }
}

fn nesting_bound(tokens: &[Token]) -> usize {
    let mut stack = vec![Group::default()];
    for t in tokens {
        match t {
            Token::LParen | Token::LBracket | Token::LBrace => stack.push(Group::default()),
            Token::RParen | Token::RBracket | Token::RBrace => {
                if stack.len() > 1
                    && let Some(mut g) = stack.pop()
                {
                    g.end_segment();
                    if let Some(parent) = stack.last_mut() {
                        parent.child = parent.child.max(g.max + 1);
                    }
                }
            }
            Token::Comma | Token::SemiColon => {
                if let Some(g) = stack.last_mut() {
                    g.end_segment();
                }
            }
            t if neutral(t) => {}
            _ => {
                if let Some(g) = stack.last_mut() {
                    g.ops += 1;
                }
            }
        }
    }
    let mut depth = 0;
    while let Some(mut g) = stack.pop() {
        g.end_segment();
        depth = g.max.max(depth + 1);
    }
    depth
}

/// Tokens that are leaves of an expression tree: names, literals, whitespace.
fn neutral(t: &Token) -> bool {
    match t {
        Token::Word(w) => w.keyword == Keyword::NoKeyword || w.quote_style.is_some(),
        Token::Whitespace(_)
        | Token::EOF
        | Token::Number(..)
        | Token::Placeholder(_)
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::TripleSingleQuotedString(_)
        | Token::TripleDoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::TripleSingleQuotedByteStringLiteral(_)
        | Token::TripleDoubleQuotedByteStringLiteral(_)
        | Token::SingleQuotedRawStringLiteral(_)
        | Token::DoubleQuotedRawStringLiteral(_)
        | Token::TripleSingleQuotedRawStringLiteral(_)
        | Token::TripleDoubleQuotedRawStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_) => true,
        _ => false,
    }
}

/// Deepest plan accepted: a chain of joins (`FROM a, b, c, …` is flat in the SQL but a
/// chain in the plan) costs planning time that grows faster than its length (300 tables:
/// a minute), and every pass over the plan recurses to its depth.
pub const MAX_PLAN_DEPTH: usize = 256;

/// Refuses a plan that would have more than `max` nodes once every shared subplan (a CTE
/// referenced twice, a view) is expanded where it is used, or more than [`MAX_PLAN_DEPTH`]
/// levels. Each distinct node is visited once: the count of a shared node is remembered by
/// its address.
pub(crate) fn check_plan_size(plan: &LogicalPlan, max: usize) -> Result<(), Error> {
    let mut memo: HashMap<*const LogicalPlan, Size> = HashMap::new();
    let size = expanded_size(plan, &mut memo, max);
    if size.nodes > max {
        return Err(Error::Limit {
            message: format!(
                "the statement would plan to more than {max} operators (CTEs and views are expanded at every reference); simplify it"
            ),
        });
    }
    if size.depth > MAX_PLAN_DEPTH {
        return Err(Error::Limit {
            message: format!(
                "the statement's plan would be more than {MAX_PLAN_DEPTH} operators deep (each table joined adds one); join fewer tables in one statement"
            ),
        });
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Size {
    nodes: usize,
    depth: usize,
}

/// Nodes of `plan` with shared inputs counted at every use (saturating just above `max`),
/// and its depth (subqueries included).
fn expanded_size(
    plan: &LogicalPlan,
    memo: &mut HashMap<*const LogicalPlan, Size>,
    max: usize,
) -> Size {
    let key = plan as *const LogicalPlan;
    if let Some(n) = memo.get(&key) {
        return *n;
    }
    let mut size = Size { nodes: 1, depth: 1 };
    let add = |child: Size, size: &mut Size| {
        size.nodes = size.nodes.saturating_add(child.nodes);
        size.depth = size.depth.max(child.depth + 1);
    };
    for input in plan.inputs() {
        let child = expanded_size(input, memo, max);
        add(child, &mut size);
        if size.nodes > max || size.depth > MAX_PLAN_DEPTH {
            break;
        }
    }
    if size.nodes <= max && size.depth <= MAX_PLAN_DEPTH {
        let _ = plan.apply_expressions(|e| {
            e.apply(|e| {
                let sub = match e {
                    Expr::ScalarSubquery(s) => Some(&s.subquery),
                    Expr::Exists(x) => Some(&x.subquery.subquery),
                    Expr::InSubquery(x) => Some(&x.subquery.subquery),
                    Expr::SetComparison(x) => Some(&x.subquery.subquery),
                    _ => None,
                };
                if let Some(sub) = sub {
                    let child = expanded_size(sub, memo, max);
                    add(child, &mut size);
                }
                Ok(if size.nodes > max || size.depth > MAX_PLAN_DEPTH {
                    TreeNodeRecursion::Stop
                } else {
                    TreeNodeRecursion::Continue
                })
            })
        });
    }
    let size = Size {
        nodes: size.nodes.min(max + 1),
        depth: size.depth.min(MAX_PLAN_DEPTH + 1),
    };
    memo.insert(key, size);
    size
}

/// Stops planning once the statement's deadline (its [`Scope`]'s) has passed. Placed between
/// DataFusion's rules.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline;

/// The error [`Deadline`] raises; [`Error::from_planning`] finds it.
#[derive(Debug)]
pub(crate) struct PlanningTimedOut;

impl std::fmt::Display for PlanningTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("planning ran past the query's deadline")
    }
}

impl std::error::Error for PlanningTimedOut {}

impl Deadline {
    fn check(config: &ConfigOptions) -> Result<()> {
        match Scope::of(config).and_then(|scope| scope.deadline) {
            Some(at) if Instant::now() >= at => {
                Err(DataFusionError::External(Box::new(PlanningTimedOut)))
            }
            _ => Ok(()),
        }
    }
}

impl AnalyzerRule for Deadline {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> Result<LogicalPlan> {
        Self::check(config)?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        "bund_deadline"
    }
}

impl OptimizerRule for Deadline {
    fn name(&self) -> &str {
        "bund_deadline"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        Self::check(&config.options())?;
        Ok(Transformed::no(plan))
    }
}

impl PhysicalOptimizerRule for Deadline {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Self::check(config)?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        "bund_deadline"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `rules` with `deadline` after each of them.
pub(crate) fn interleave<T: ?Sized>(rules: Vec<Arc<T>>, deadline: Arc<T>) -> Vec<Arc<T>> {
    let mut out = Vec::with_capacity(rules.len() * 2 + 1);
    out.push(Arc::clone(&deadline));
    for r in rules {
        out.push(r);
        out.push(Arc::clone(&deadline));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(sql: &str) -> usize {
        nesting_bound(&Tokenizer::new(&GenericDialect {}, sql).tokenize().unwrap())
    }

    #[test]
    fn an_operator_chain_counts_every_operator() {
        let chain = format!("SELECT {}", vec!["1"; 80].join("+"));
        assert!(depth(&chain) >= 80, "{}", depth(&chain));
        let ors = (0..100)
            .map(|i| format!("a = {i}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        assert!(depth(&format!("SELECT * FROM t WHERE {ors}")) >= 200);
    }

    #[test]
    fn lists_do_not_add_up() {
        let list = (0..10_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        assert!(depth(&format!("SELECT * FROM t WHERE a IN ({list})")) < 20);
        let columns = (0..3_000)
            .map(|i| format!("c{i} + 1 AS x{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        assert!(depth(&format!("SELECT {columns} FROM t")) < 20);
    }

    #[test]
    fn nesting_adds_the_inner_group_to_its_segment() {
        let nested = format!("SELECT {}1{}", "(1 + ".repeat(30), ")".repeat(30));
        assert!(depth(&nested) >= 60, "{}", depth(&nested));
        // unbalanced input still gives a number (the parser reports the error)
        assert!(depth("SELECT ((((1") >= 1);
        assert!(depth("SELECT 1))))") >= 1);
    }

    #[test]
    fn the_statement_size_is_bounded() {
        let limits = Limits {
            max_statement_bytes: 1024,
            max_expression_depth: 100,
            max_plan_nodes: 100,
        };
        let long = format!("SELECT '{}'", "x".repeat(2000));
        assert!(matches!(
            check_text(&long, &limits),
            Err(Error::Limit { .. })
        ));
        let deep = format!("SELECT {}", vec!["1"; 200].join("+"));
        assert!(matches!(
            check_text(&deep, &limits),
            Err(Error::Limit { .. })
        ));
        assert!(check_text("SELECT 1 + 2", &limits).is_ok());
    }
}
