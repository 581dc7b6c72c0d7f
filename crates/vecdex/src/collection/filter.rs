//! The metadata filter language of collections (Chroma / Pinecone / Mongo style), parsed from JSON
//! into a [`Filter`], and its per-item evaluation ([`Filter::matches`]), which is the reference
//! that the bitmap compilation of declared fields ([`super::columns::Columns::compile`]) equals.
//!
//! # Language
//! - `{}` admits every item. `{ field: value }` is `{ field: { $eq: value } }`. Several keys in one
//!   object are ANDed, and so are several operators on one field (`{ year: { $gte: 2000, $lt: 2010 } }`).
//! - `$eq $ne $gt $gte $lt $lte`: the operand is a string, number or boolean (ranges: a number or a
//!   string; a boolean range operand is an error). `$in $nin`: an array of those (may be empty).
//!   `$exists`: `true` or `false`. `$contains`: a string, number or boolean that the field, an
//!   array, must hold.
//! - `$and: [f, ...]`, `$or: [f, ...]`: a non-empty array of filter objects. `$not: f`: the
//!   complement of the filter object `f`. Inside a field's operators, `$not: { ops }` is the
//!   complement of those operators on that field (`{ price: { $not: { $gt: 5 } } }`).
//! - Filters nest at most [`MAX_FILTER_DEPTH`] levels of `$and`/`$or`/`$not`.
//!
//! # Fine print
//! - **Paths.** A field name is a dotted path: `"a.b"` reads key `b` of the object at top-level
//!   key `a`. A dot always separates segments, so a top-level key that itself contains a dot
//!   cannot be filtered on. Paths walk objects only: an array (or any non-object) on the way means
//!   the field is missing. An empty name or an empty segment (`"a..b"`, `".a"`) is an error.
//! - **null is missing.** A field whose value is `null` behaves exactly like an absent field,
//!   for every operator including `$exists`.
//! - **Comparisons** are between values of one kind: numbers with numbers (as f64, so `1` equals
//!   `1.0` and `-0` equals `0`), strings with strings (ordered by their UTF-8 bytes), booleans with
//!   booleans (equality only). A value of another kind (a string against a number operand, an
//!   object, a nested array) simply does not match; it is never an error.
//! - **Arrays** (Mongo semantics): on a field holding an array, `$eq $gt $gte $lt $lte $in` match
//!   when any element matches; each operator of `{ $gt: 1, $lt: 3 }` may be met by a different
//!   element. `$contains: v` matches only arrays holding an element equal to `v` (a scalar field
//!   equal to `v` does not match).
//! - **Negations**: `$ne` is exactly `$not $eq` and `$nin` exactly `$not $in`, so both also match
//!   items that lack the field (or hold a value of another kind). `$exists: false` matches
//!   missing and null fields. An item without metadata is an item where every field is missing.
//! - A field that no item has is not an error: it matches nothing, except through the negations.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// How many levels of `$and`/`$or`/`$not` a filter may nest: a deeper one is an error, so that a
/// crafted filter cannot exhaust the stack of parsing or evaluation.
pub const MAX_FILTER_DEPTH: usize = 64;

/// A parsed metadata filter (Chroma/Pinecone/Mongo-style JSON); the language is in the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    root: Node,
}

/// A node of a parsed filter. `$ne` and `$nin` are parsed as `Not` of `$eq` and `$in`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// Every child admits the item; with no children, every item is admitted.
    And(Vec<Node>),
    /// Some child admits the item (never empty).
    Or(Vec<Node>),
    Not(Box<Node>),
    Field(FieldTest),
}

/// One operator on one field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldTest {
    /// The dotted path as written.
    pub path: String,
    pub test: Test,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    Eq(Scalar),
    In(Vec<Scalar>),
    /// `$gt $gte $lt $lte`; the operand is a number or a string, never a boolean.
    Range(RangeOp, Scalar),
    Exists(bool),
    Contains(Scalar),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl RangeOp {
    /// Whether a value ordered `order` relative to the operand passes.
    fn admits(self, order: Ordering) -> bool {
        match self {
            RangeOp::Gt => order == Ordering::Greater,
            RangeOp::Gte => order != Ordering::Less,
            RangeOp::Lt => order == Ordering::Less,
            RangeOp::Lte => order != Ordering::Greater,
        }
    }
}

/// An operand: a JSON string, number or boolean.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    String(String),
    Number(f64),
    Boolean(bool),
}

impl Scalar {
    /// How `value` orders against this operand, or None when they are of different kinds (or the
    /// value is an array, an object or null).
    pub(crate) fn order_of(&self, value: &Value) -> Option<Ordering> {
        match (value, self) {
            (Value::Number(n), Scalar::Number(x)) => n.as_f64()?.partial_cmp(x),
            (Value::String(s), Scalar::String(x)) => Some(s.as_str().cmp(x.as_str())),
            (Value::Bool(b), Scalar::Boolean(x)) => Some(b.cmp(x)),
            _ => None,
        }
    }

    fn equals(&self, value: &Value) -> bool {
        self.order_of(value) == Some(Ordering::Equal)
    }
}

/// The value at dotted `path` in `metadata`; None when the path is missing, runs through a
/// non-object, or ends at null (null is missing, see the module docs).
pub(crate) fn lookup<'a>(
    metadata: Option<&'a Map<String, Value>>,
    path: &str,
) -> Option<&'a Value> {
    let mut segments = path.split('.');
    let mut value = metadata?.get(segments.next()?)?;
    for segment in segments {
        value = value.as_object()?.get(segment)?;
    }
    if value.is_null() {
        None
    } else {
        Some(value)
    }
}

/// Whether `value` (one field's value, None: missing), or any of its elements if it is an array,
/// satisfies `predicate`.
fn any_element(value: Option<&Value>, predicate: impl Fn(&Value) -> bool) -> bool {
    match value {
        None => false,
        Some(Value::Array(items)) => items.iter().any(predicate),
        Some(scalar) => predicate(scalar),
    }
}

impl Test {
    pub(crate) fn matches(&self, value: Option<&Value>) -> bool {
        match self {
            Test::Eq(operand) => any_element(value, |v| operand.equals(v)),
            Test::In(operands) => any_element(value, |v| operands.iter().any(|o| o.equals(v))),
            Test::Range(op, operand) => {
                any_element(value, |v| operand.order_of(v).is_some_and(|o| op.admits(o)))
            }
            Test::Exists(wanted) => value.is_some() == *wanted,
            Test::Contains(operand) => match value {
                Some(Value::Array(items)) => items.iter().any(|v| operand.equals(v)),
                _ => false,
            },
        }
    }
}

impl Node {
    pub(crate) fn matches(&self, metadata: Option<&Map<String, Value>>) -> bool {
        match self {
            Node::And(children) => children.iter().all(|c| c.matches(metadata)),
            Node::Or(children) => children.iter().any(|c| c.matches(metadata)),
            Node::Not(inner) => !inner.matches(metadata),
            Node::Field(field) => field.test.matches(lookup(metadata, &field.path)),
        }
    }

    fn collect_fields<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Node::And(children) | Node::Or(children) => {
                children.iter().for_each(|c| c.collect_fields(out))
            }
            Node::Not(inner) => inner.collect_fields(out),
            Node::Field(field) => {
                if !out.contains(&field.path.as_str()) {
                    out.push(&field.path);
                }
            }
        }
    }
}

impl Filter {
    /// Parses a filter object. A malformed one is [`Error::InvalidArgument`] naming the operator
    /// and the path, e.g. `filter: unknown operator "$foo" at $and[1].price`.
    pub fn parse(json: &Value) -> Result<Filter> {
        if !json.is_object() {
            return Err(Error::invalid(format!(
                "filter: a filter must be an object, got {}",
                describe(json)
            )));
        }
        Ok(Filter {
            root: parse_filter_object(json, "", 0)?,
        })
    }

    /// Whether the filter admits every item (`{}`, or only empty objects under `$and`).
    pub fn matches_all(&self) -> bool {
        matches!(&self.root, Node::And(children) if children.is_empty())
    }

    /// The per-item evaluation (the slow path and the reference): `metadata` is the item's
    /// object (None: no metadata).
    pub fn matches(&self, metadata: Option<&Map<String, Value>>) -> bool {
        self.root.matches(metadata)
    }

    /// Field paths the filter reads, each once, in order of first appearance (dotted paths as
    /// written).
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.root.collect_fields(&mut out);
        out
    }

    pub(crate) fn root(&self) -> &Node {
        &self.root
    }
}

/// The operators that apply to one field.
pub(crate) const FIELD_OPERATORS: [&str; 11] = [
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$contains",
    "$not",
];

/// `path` extended by a key, for error messages (`$and[1]` + `price` = `$and[1].price`).
fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `path` for error messages: the empty root path reads as "the top level".
fn at(path: &str) -> String {
    if path.is_empty() {
        "the top level".to_string()
    } else {
        path.to_string()
    }
}

/// A filter object (fields and `$and`/`$or`/`$not`) at `path`, nested `depth` logical levels.
fn parse_filter_object(json: &Value, path: &str, depth: usize) -> Result<Node> {
    let Some(object) = json.as_object() else {
        return Err(Error::invalid(format!(
            "filter: expected a filter object at {}, got {}",
            at(path),
            describe(json)
        )));
    };
    let mut children = Vec::with_capacity(object.len());
    for (key, value) in object {
        let node = match key.as_str() {
            "$and" | "$or" => {
                let branches = parse_branches(key, value, path, depth)?;
                if key == "$and" {
                    let mut flat = Vec::with_capacity(branches.len());
                    branches
                        .into_iter()
                        .for_each(|branch| push_and_child(&mut flat, branch));
                    Node::And(flat)
                } else {
                    Node::Or(branches)
                }
            }
            "$not" => {
                check_depth(key, path, depth)?;
                Node::Not(Box::new(parse_filter_object(
                    value,
                    &child_path(path, key),
                    depth + 1,
                )?))
            }
            op if FIELD_OPERATORS.contains(&op) => {
                return Err(Error::invalid(format!(
                    "filter: {op} at {} needs a field: write {{ field: {{ {op}: value }} }}",
                    at(path)
                )))
            }
            op if op.starts_with('$') => {
                return Err(Error::invalid(format!(
                    "filter: unknown operator \"{op}\" at {}",
                    at(path)
                )))
            }
            field => {
                let field_path = child_path(path, field);
                check_field_name(field, &field_path)?;
                parse_field(field, value, &field_path, depth)?
            }
        };
        push_and_child(&mut children, node);
    }
    Ok(single_or_and(children))
}

/// Adds `node` to the children of an AND, splicing in a nested AND (which also drops `{}`).
fn push_and_child(children: &mut Vec<Node>, node: Node) {
    match node {
        Node::And(inner) => children.extend(inner),
        other => children.push(other),
    }
}

fn single_or_and(mut children: Vec<Node>) -> Node {
    if children.len() == 1 {
        children.pop().unwrap_or(Node::And(Vec::new()))
    } else {
        Node::And(children)
    }
}

/// Refuses a logical operator `op` in the object at `path` when it would nest a level deeper than
/// [`MAX_FILTER_DEPTH`].
fn check_depth(op: &str, path: &str, depth: usize) -> Result<()> {
    if depth >= MAX_FILTER_DEPTH {
        let path = at(path);
        let shown: String = path.chars().take(80).collect();
        let ellipsis = if shown.len() < path.len() { "…" } else { "" };
        return Err(Error::invalid(format!(
            "filter: {op} at {shown}{ellipsis} nests $and/$or/$not more than {MAX_FILTER_DEPTH} levels deep"
        )));
    }
    Ok(())
}

/// The branches of `$and`/`$or` (`op`), which sits in the filter object at `path`.
fn parse_branches(op: &str, value: &Value, path: &str, depth: usize) -> Result<Vec<Node>> {
    check_depth(op, path, depth)?;
    let Some(items) = value.as_array() else {
        return Err(Error::invalid(format!(
            "filter: {op} at {} needs an array of filter objects, got {}",
            at(path),
            describe(value)
        )));
    };
    if items.is_empty() {
        return Err(Error::invalid(format!(
            "filter: {op} at {} needs at least one filter object, got []",
            at(path)
        )));
    }
    let branch_path = child_path(path, op);
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_filter_object(item, &format!("{branch_path}[{i}]"), depth + 1))
        .collect()
}

fn check_field_name(field: &str, path: &str) -> Result<()> {
    if field.is_empty() {
        return Err(Error::invalid(format!(
            "filter: empty field name at {path}"
        )));
    }
    if field.split('.').any(str::is_empty) {
        return Err(Error::invalid(format!(
            "filter: field \"{field}\" at {path} has an empty segment (fields are dotted paths like \"a.b\")"
        )));
    }
    Ok(())
}

/// The condition on one field: a scalar (`$eq`) or an object of operators.
fn parse_field(field: &str, value: &Value, path: &str, depth: usize) -> Result<Node> {
    let Some(operators) = value.as_object() else {
        let operand = scalar_operand("$eq", value, path)?;
        return Ok(field_node(field, Test::Eq(operand)));
    };
    if operators.is_empty() {
        return Err(Error::invalid(format!(
            "filter: no operator at {path}: write {{ $eq: value }} or another operator, not {{}}"
        )));
    }
    let mut children = Vec::with_capacity(operators.len());
    for (op, operand) in operators {
        let node = match op.as_str() {
            "$eq" => field_node(field, Test::Eq(scalar_operand(op, operand, path)?)),
            "$ne" => Node::Not(Box::new(field_node(
                field,
                Test::Eq(scalar_operand(op, operand, path)?),
            ))),
            "$gt" | "$gte" | "$lt" | "$lte" => {
                let range_op = match op.as_str() {
                    "$gt" => RangeOp::Gt,
                    "$gte" => RangeOp::Gte,
                    "$lt" => RangeOp::Lt,
                    _ => RangeOp::Lte,
                };
                let bound = scalar_operand(op, operand, path)?;
                if let Scalar::Boolean(_) = bound {
                    return Err(Error::invalid(format!(
                        "filter: {op} at {path} needs a number or a string, got {}",
                        describe(operand)
                    )));
                }
                field_node(field, Test::Range(range_op, bound))
            }
            "$in" => field_node(field, Test::In(list_operand(op, operand, path)?)),
            "$nin" => Node::Not(Box::new(field_node(
                field,
                Test::In(list_operand(op, operand, path)?),
            ))),
            "$exists" => match operand {
                Value::Bool(wanted) => field_node(field, Test::Exists(*wanted)),
                other => {
                    return Err(Error::invalid(format!(
                        "filter: $exists at {path} needs true or false, got {}",
                        describe(other)
                    )))
                }
            },
            "$contains" => field_node(field, Test::Contains(scalar_operand(op, operand, path)?)),
            "$not" => {
                check_depth(op, path, depth)?;
                if !operand.is_object() {
                    return Err(Error::invalid(format!(
                        "filter: $not at {path} needs an object of operators, got {}",
                        describe(operand)
                    )));
                }
                let not_path = child_path(path, op);
                Node::Not(Box::new(parse_field(field, operand, &not_path, depth + 1)?))
            }
            "$and" | "$or" => {
                return Err(Error::invalid(format!(
                    "filter: {op} at {path} is not a field operator: put it beside fields, not inside one"
                )))
            }
            unknown if unknown.starts_with('$') => {
                return Err(Error::invalid(format!(
                    "filter: unknown operator \"{unknown}\" at {path}"
                )))
            }
            key => {
                return Err(Error::invalid(format!(
                    "filter: \"{key}\" at {path} is not an operator (operators start with $; \
                     nested fields are dotted paths like \"{field}.{key}\")"
                )))
            }
        };
        push_and_child(&mut children, node);
    }
    Ok(single_or_and(children))
}

fn field_node(field: &str, test: Test) -> Node {
    Node::Field(FieldTest {
        path: field.to_string(),
        test,
    })
}

fn scalar_operand(op: &str, operand: &Value, path: &str) -> Result<Scalar> {
    match operand {
        Value::String(s) => Ok(Scalar::String(s.clone())),
        Value::Bool(b) => Ok(Scalar::Boolean(*b)),
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.is_finite() => Ok(Scalar::Number(x)),
            _ => Err(Error::invalid(format!(
                "filter: {op} at {path} has a number out of range: {n}"
            ))),
        },
        Value::Array(_) if op == "$eq" => Err(Error::invalid(format!(
            "filter: $eq at {path} needs a string, number or boolean, got {} (use $in for a list)",
            describe(operand)
        ))),
        other => Err(Error::invalid(format!(
            "filter: {op} at {path} needs a string, number or boolean, got {}",
            describe(other)
        ))),
    }
}

fn list_operand(op: &str, operand: &Value, path: &str) -> Result<Vec<Scalar>> {
    let Some(items) = operand.as_array() else {
        return Err(Error::invalid(format!(
            "filter: {op} at {path} needs an array, got {}",
            describe(operand)
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => scalar_operand(op, item, path),
            other => Err(Error::invalid(format!(
                "filter: {op} at {path} needs an array of strings, numbers or booleans, got {} at index {i}",
                describe(other)
            ))),
        })
        .collect()
}

/// A short JSON rendering of `value` for an error message: bounded in length and nesting, so a
/// huge or deeply nested operand costs neither time nor stack.
pub(crate) fn describe(value: &Value) -> String {
    const MAX_CHARS: usize = 60;
    let mut out = String::new();
    write_bounded(value, &mut out, 0);
    if out.chars().count() > MAX_CHARS {
        out = out.chars().take(MAX_CHARS).collect();
        out.push('…');
    }
    out
}

fn write_bounded(value: &Value, out: &mut String, depth: usize) {
    const MAX_DEPTH: usize = 3;
    const MAX_ITEMS: usize = 8;
    const MAX_LEN: usize = 80;
    match value {
        Value::Array(items) => {
            if depth >= MAX_DEPTH && !items.is_empty() {
                out.push_str("[…]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if i >= MAX_ITEMS || out.len() > MAX_LEN {
                    out.push('…');
                    break;
                }
                write_bounded(item, out, depth + 1);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            if depth >= MAX_DEPTH && !fields.is_empty() {
                out.push_str("{…}");
                return;
            }
            out.push('{');
            for (i, (key, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if i >= MAX_ITEMS || out.len() > MAX_LEN {
                    out.push('…');
                    break;
                }
                out.push_str(&Value::String(key.chars().take(MAX_LEN).collect()).to_string());
                out.push(':');
                write_bounded(item, out, depth + 1);
            }
            out.push('}');
        }
        Value::String(s) => {
            out.push_str(&Value::String(s.chars().take(MAX_LEN).collect()).to_string())
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error_of(filter: Value) -> String {
        match Filter::parse(&filter) {
            Ok(parsed) => panic!("{filter} parsed as {parsed:?}"),
            Err(error) => {
                assert_eq!(error.code(), "ERR_INVALID_ARGUMENT", "{error}");
                error.to_string()
            }
        }
    }

    fn admits(filter: Value, metadata: Value) -> bool {
        let parsed = Filter::parse(&filter).expect("valid filter");
        parsed.matches(metadata.as_object())
    }

    #[test]
    fn malformed_filters_name_the_operator_and_the_path() {
        let cases = [
            (
                json!({"$and": [{"a": 1}, {"price": {"$foo": 1}}]}),
                r#"filter: unknown operator "$foo" at $and[1].price"#,
            ),
            (json!({"year": {"$in": 3}}), "filter: $in at year needs an array, got 3"),
            (json!({"$nor": [{"a": 1}]}), r#"filter: unknown operator "$nor" at the top level"#),
            (
                json!({"$and": []}),
                "filter: $and at the top level needs at least one filter object, got []",
            ),
            (
                json!({"$and": [{"$or": []}]}),
                "filter: $or at $and[0] needs at least one filter object, got []",
            ),
            (
                json!({"$or": {"a": 1}}),
                r#"filter: $or at the top level needs an array of filter objects, got {"a":1}"#,
            ),
            (
                json!({"$or": [{"a": 1}, 7]}),
                "filter: expected a filter object at $or[1], got 7",
            ),
            (json!({"$not": "x"}), r#"filter: expected a filter object at $not, got "x""#),
            (
                json!({"$eq": 1}),
                "filter: $eq at the top level needs a field: write { field: { $eq: value } }",
            ),
            (
                json!({"a": {"$gt": true}}),
                "filter: $gt at a needs a number or a string, got true",
            ),
            (
                json!({"a": {"$lte": [1]}}),
                "filter: $lte at a needs a string, number or boolean, got [1]",
            ),
            (
                json!({"a": [1, 2]}),
                "filter: $eq at a needs a string, number or boolean, got [1,2] (use $in for a list)",
            ),
            (
                json!({"a": null}),
                "filter: $eq at a needs a string, number or boolean, got null",
            ),
            (
                json!({"a": {"$ne": {"x": 1}}}),
                r#"filter: $ne at a needs a string, number or boolean, got {"x":1}"#,
            ),
            (
                json!({"a": {"$exists": 1}}),
                "filter: $exists at a needs true or false, got 1",
            ),
            (
                json!({"a": {"$nin": [1, null]}}),
                "filter: $nin at a needs an array of strings, numbers or booleans, got null at index 1",
            ),
            (
                json!({"a": {"$contains": []}}),
                "filter: $contains at a needs a string, number or boolean, got []",
            ),
            (
                json!({"a": {}}),
                "filter: no operator at a: write { $eq: value } or another operator, not {}",
            ),
            (
                json!({"a": {"b": 1}}),
                r#"filter: "b" at a is not an operator (operators start with $; nested fields are dotted paths like "a.b")"#,
            ),
            (
                json!({"a": {"$and": [{"$gt": 1}]}}),
                "filter: $and at a is not a field operator: put it beside fields, not inside one",
            ),
            (
                json!({"a": {"$not": 5}}),
                "filter: $not at a needs an object of operators, got 5",
            ),
            (
                json!({"a": {"$not": {"$bar": 5}}}),
                r#"filter: unknown operator "$bar" at a.$not"#,
            ),
            (json!({"$or": [{"": 1}]}), "filter: empty field name at $or[0]."),
            (
                json!({"a..b": 1}),
                r#"filter: field "a..b" at a..b has an empty segment (fields are dotted paths like "a.b")"#,
            ),
            (json!([{"a": 1}]), r#"filter: a filter must be an object, got [{"a":1}]"#),
            (json!(null), "filter: a filter must be an object, got null"),
        ];
        for (filter, expected) in cases {
            assert_eq!(error_of(filter), expected);
        }
    }

    #[test]
    fn huge_operands_are_described_briefly() {
        let mut deep = json!(1);
        for _ in 0..2000 {
            deep = json!([deep]);
        }
        let message = error_of(json!({ "a": { "$gt": deep } }));
        assert_eq!(
            message,
            "filter: $gt at a needs a string, number or boolean, got [[[[…]]]]"
        );
        let wide: Vec<Value> = (0..100_000).map(|i| json!(format!("value {i}"))).collect();
        let message = error_of(json!({ "a": { "$eq": wide } }));
        assert!(message.len() < 200, "{message}");
        assert!(message.contains("\"value 5\"…"), "{message}");
    }

    fn nested(levels: usize, wrap: impl Fn(Value) -> Value) -> Value {
        let mut filter = json!({"a": {"$eq": 1}});
        for _ in 0..levels {
            filter = wrap(filter);
        }
        filter
    }

    #[test]
    fn nesting_is_limited_without_exhausting_the_stack() {
        let wrappers: [fn(Value) -> Value; 4] = [
            |f| json!({ "$not": f }),
            |f| json!({ "$and": [f] }),
            |f| json!({ "$or": [{"b": 2}, f] }),
            |f| json!({ "a": { "$not": f["a"].clone() } }),
        ];
        for wrap in wrappers {
            let deepest_allowed = nested(MAX_FILTER_DEPTH, wrap);
            assert!(Filter::parse(&deepest_allowed).is_ok(), "{deepest_allowed}");
            let message = error_of(nested(MAX_FILTER_DEPTH + 1, wrap));
            assert!(message.contains("more than 64 levels deep"), "{message}");
            let message = error_of(nested(1000, wrap));
            assert!(message.contains("more than 64 levels deep"), "{message}");
        }
    }

    #[test]
    fn field_level_not_nests_in_its_field() {
        // The field-level wrapper above rewraps the operand of "a": check it means what it says.
        let filter = json!({"a": {"$not": {"$not": {"$eq": 1}}}});
        assert!(admits(filter.clone(), json!({"a": 1})));
        assert!(!admits(filter, json!({"a": 2})));
    }

    #[test]
    fn empty_filter_and_empty_ands_admit_everything() {
        for filter in [
            json!({}),
            json!({"$and": [{}]}),
            json!({"$and": [{}, {"$and": [{}]}]}),
        ] {
            let parsed = Filter::parse(&filter).expect("valid");
            assert!(parsed.matches_all(), "{filter}");
            assert!(parsed.matches(None));
            assert!(parsed.fields().is_empty());
        }
        for filter in [json!({"a": 1}), json!({"$or": [{}]}), json!({"$not": {}})] {
            assert!(
                !Filter::parse(&filter).expect("valid").matches_all(),
                "{filter}"
            );
        }
        assert!(admits(json!({"$or": [{}, {"a": 1}]}), json!({})));
        assert!(!admits(json!({"$not": {}}), json!({})));
    }

    #[test]
    fn fields_lists_each_path_once_in_order() {
        let filter = json!({"$or": [{"b.c": 1, "a": 2}, {"a": {"$gt": 1}}], "z": {"$not": {"$exists": true}}});
        let parsed = Filter::parse(&filter).expect("valid");
        // Object keys keep their written order (serde_json's preserve_order, as metadata does).
        assert_eq!(parsed.fields(), vec!["b.c", "a", "z"]);
    }

    #[test]
    fn equality_and_ranges_compare_one_kind_of_value() {
        assert!(admits(json!({"n": 1}), json!({"n": 1.0})));
        assert!(admits(json!({"n": 0}), json!({"n": -0.0})));
        assert!(!admits(json!({"n": 1}), json!({"n": "1"})));
        assert!(!admits(json!({"n": true}), json!({"n": 1})));
        assert!(admits(json!({"n": {"$gt": 1, "$lte": 2}}), json!({"n": 2})));
        assert!(!admits(
            json!({"n": {"$gt": 1, "$lte": 2}}),
            json!({"n": 2.5})
        ));
        assert!(!admits(json!({"n": {"$gt": "1"}}), json!({"n": 5})));
        assert!(!admits(json!({"n": {"$lt": 5}}), json!({"n": "1"})));
        // Strings order by UTF-8 bytes: "é" (0xC3 0xA9) after "z", "B" before "a".
        assert!(admits(json!({"s": {"$gt": "z"}}), json!({"s": "é"})));
        assert!(admits(json!({"s": {"$lt": "a"}}), json!({"s": "B"})));
        assert!(admits(json!({"s": {"$gte": ""}}), json!({"s": ""})));
        assert!(admits(json!({"b": false}), json!({"b": false})));
        assert!(!admits(json!({"b": false}), json!({"b": 0})));
        assert!(!admits(json!({"o": 1}), json!({"o": {"x": 1}})));
    }

    #[test]
    fn arrays_match_when_any_element_does() {
        let item = json!({"tags": ["red", "blue"], "n": [1, 10]});
        assert!(admits(json!({"tags": "red"}), item.clone()));
        assert!(admits(
            json!({"tags": {"$in": ["green", "blue"]}}),
            item.clone()
        ));
        assert!(!admits(json!({"tags": {"$ne": "red"}}), item.clone()));
        assert!(!admits(json!({"tags": {"$nin": ["red"]}}), item.clone()));
        assert!(admits(json!({"tags": {"$nin": ["green"]}}), item.clone()));
        assert!(admits(json!({"tags": {"$contains": "blue"}}), item.clone()));
        // Each range operator may be met by a different element (Mongo).
        assert!(admits(json!({"n": {"$gt": 5, "$lt": 5}}), item.clone()));
        assert!(!admits(json!({"n": {"$gt": 10}}), item.clone()));
        // $contains needs an array; nested arrays are not searched.
        assert!(!admits(
            json!({"tags": {"$contains": "red"}}),
            json!({"tags": "red"})
        ));
        assert!(!admits(json!({"tags": "red"}), json!({"tags": [["red"]]})));
        assert!(!admits(
            json!({"tags": {"$exists": false}}),
            json!({"tags": []})
        ));
        assert!(!admits(json!({"tags": "red"}), json!({"tags": []})));
    }

    #[test]
    fn negations_match_missing_and_null_fields() {
        for item in [json!({}), json!({"a": null}), json!({"b": 1})] {
            assert!(admits(json!({"a": {"$ne": 1}}), item.clone()), "{item}");
            assert!(admits(json!({"a": {"$nin": [1]}}), item.clone()), "{item}");
            assert!(
                admits(json!({"a": {"$exists": false}}), item.clone()),
                "{item}"
            );
            assert!(
                admits(json!({"$not": {"a": {"$gt": 0}}}), item.clone()),
                "{item}"
            );
            assert!(
                !admits(json!({"a": {"$exists": true}}), item.clone()),
                "{item}"
            );
            assert!(!admits(json!({"a": {"$lt": 5}}), item.clone()), "{item}");
        }
        let parsed = Filter::parse(&json!({"a": {"$ne": 1}})).expect("valid");
        assert!(
            parsed.matches(None),
            "an item without metadata lacks every field"
        );
        assert!(admits(json!({"a": {"$ne": 1}}), json!({"a": "1"})));
    }

    #[test]
    fn dotted_paths_walk_nested_objects_only() {
        let item = json!({"a": {"b": {"c": 5}}, "x.y": 1, "arr": [{"b": 1}]});
        assert!(admits(json!({"a.b.c": 5}), item.clone()));
        assert!(admits(json!({"a.b": {"$exists": true}}), item.clone()));
        assert!(!admits(json!({"a.b.c.d": {"$exists": true}}), item.clone()));
        assert!(!admits(json!({"a.c": {"$exists": true}}), item.clone()));
        // A dot always separates: the top-level key "x.y" is out of reach.
        assert!(!admits(json!({"x.y": 1}), item.clone()));
        // Paths do not descend into arrays.
        assert!(!admits(json!({"arr.b": 1}), item));
    }

    #[test]
    fn several_keys_and_operators_are_anded() {
        let filter = json!({"a": 1, "b": {"$gte": 2, "$lt": 4, "$ne": 3}});
        assert!(admits(filter.clone(), json!({"a": 1, "b": 2})));
        assert!(!admits(filter.clone(), json!({"a": 1, "b": 3})));
        assert!(!admits(filter.clone(), json!({"a": 2, "b": 2})));
        assert!(!admits(filter, json!({"a": 1, "b": 4})));
        let or = json!({"$or": [{"a": 1}, {"b": {"$in": []}}], "c": {"$exists": true}});
        assert!(admits(or.clone(), json!({"a": 1, "c": false})));
        assert!(!admits(or, json!({"a": 1})));
    }
}
