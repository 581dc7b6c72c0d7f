//! Declared metadata fields stored column-wise, and filters compiled to row bitmaps.
//!
//! Each declared field is a [`Column`]: the rows where it is present (for `$exists`), and its
//! values mapped to the rows holding them, in value order:
//! - `string`: string → rows; `string[]`: element → rows (a row is under each of its elements);
//! - `number`: number (f64, `-0` stored as `0`) → rows;
//! - `boolean`: one bitmap for `true`, one for `false`.
//!
//! Ordered maps give ranges: a range is the union of the row sets of the values in it. A value
//! held by one row keeps that row inline instead of a bitmap (high-cardinality columns such as
//! prices or timestamps would otherwise cost a bitmap per row), and a range gathers those rows in
//! one vector, sorts it once and merges it with the bitmaps of the shared values.
//!
//! [`Columns::compile`] turns a [`Filter`] into the bitmap of admitted rows: `$and` intersects,
//! `$or` unites, `$not`/`$ne`/`$nin` subtract from the rows in scope. A subtree that reads no
//! declared field is evaluated row by row with [`Filter`]'s own evaluation, over only the rows
//! the declared parts left in scope. The result always equals `Filter::matches` row by row (the
//! semantics are in [`super::filter`]).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;

use roaring::{MultiOps, RoaringBitmap};
use serde_json::{Map, Value};

use super::filter::{describe, lookup, Filter, Node, RangeOp, Scalar, Test};
use crate::error::{Error, Result};

/// The type of a declared metadata field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Number,
    Boolean,
    StringArray,
}

impl FieldType {
    /// Parses a type name: `"string"`, `"number"`, `"boolean"` or `"string[]"`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "string" => Ok(FieldType::String),
            "number" => Ok(FieldType::Number),
            "boolean" => Ok(FieldType::Boolean),
            "string[]" => Ok(FieldType::StringArray),
            other => Err(Error::invalid(format!(
                "unknown field type \"{other}\": expected \"string\", \"number\", \"boolean\" or \"string[]\""
            ))),
        }
    }

    /// The name [`FieldType::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::StringArray => "string[]",
        }
    }

    /// A stable one-byte code, for files.
    pub fn code(self) -> u8 {
        match self {
            FieldType::String => 1,
            FieldType::Number => 2,
            FieldType::Boolean => 3,
            FieldType::StringArray => 4,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(FieldType::String),
            2 => Some(FieldType::Number),
            3 => Some(FieldType::Boolean),
            4 => Some(FieldType::StringArray),
            _ => None,
        }
    }

    /// Whether `value` (not null) is of this type.
    fn admits(self, value: &Value) -> bool {
        match self {
            FieldType::String => value.is_string(),
            FieldType::Number => value.is_number(),
            FieldType::Boolean => value.is_boolean(),
            FieldType::StringArray => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
        }
    }
}

/// A number as a map key: ordered by `f64::total_cmp`, with `-0` folded into `0` so that key
/// equality is f64 equality (JSON has no NaN).
#[derive(Debug, Clone, Copy)]
struct NumberKey(f64);

impl NumberKey {
    fn new(value: f64) -> Self {
        NumberKey(if value == 0.0 { 0.0 } else { value })
    }
}

impl PartialEq for NumberKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for NumberKey {}
impl PartialOrd for NumberKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for NumberKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The rows holding one value: inline while there is one.
#[derive(Debug, Clone, PartialEq)]
enum Rows {
    One(u32),
    Many(RoaringBitmap),
}

impl Rows {
    fn insert(&mut self, row: u32) {
        match self {
            Rows::One(existing) if *existing == row => {}
            Rows::One(existing) => {
                let (low, high) = if *existing < row {
                    (*existing, row)
                } else {
                    (row, *existing)
                };
                *self = Rows::Many([low, high].into_iter().collect());
            }
            Rows::Many(bitmap) => {
                bitmap.insert(row);
            }
        }
    }

    /// Removes `row`; returns whether no row is left.
    fn remove(&mut self, row: u32) -> bool {
        match self {
            Rows::One(existing) => *existing == row,
            Rows::Many(bitmap) => {
                bitmap.remove(row);
                match bitmap.len() {
                    0 => true,
                    1 => {
                        if let Some(last) = bitmap.min() {
                            *self = Rows::One(last);
                        }
                        false
                    }
                    _ => false,
                }
            }
        }
    }

    fn to_bitmap(&self) -> Cow<'_, RoaringBitmap> {
        match self {
            Rows::One(row) => Cow::Owned(std::iter::once(*row).collect()),
            Rows::Many(bitmap) => Cow::Borrowed(bitmap),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Rows::One(_) => 0,
            Rows::Many(bitmap) => bitmap.serialized_size(),
        }
    }
}

/// The union of many row sets, with the inline rows gathered, sorted and bulk-loaded once.
fn union_rows<'a>(sets: impl Iterator<Item = &'a Rows>) -> RoaringBitmap {
    let mut singles = Vec::new();
    let mut bitmaps = Vec::new();
    for rows in sets {
        match rows {
            Rows::One(row) => singles.push(*row),
            Rows::Many(bitmap) => bitmaps.push(bitmap),
        }
    }
    singles.sort_unstable();
    let inline: RoaringBitmap = singles.into_iter().collect();
    if bitmaps.is_empty() {
        inline
    } else {
        std::iter::once(&inline).chain(bitmaps).union()
    }
}

fn insert_value<K: Ord>(map: &mut BTreeMap<K, Rows>, key: K, row: u32) {
    match map.entry(key) {
        std::collections::btree_map::Entry::Vacant(entry) => {
            entry.insert(Rows::One(row));
        }
        std::collections::btree_map::Entry::Occupied(mut entry) => entry.get_mut().insert(row),
    }
}

fn remove_value<K: Ord + ?Sized, Q>(map: &mut BTreeMap<Q, Rows>, key: &K, row: u32)
where
    Q: Ord + std::borrow::Borrow<K>,
{
    if let Some(rows) = map.get_mut(key) {
        if rows.remove(row) {
            map.remove(key);
        }
    }
}

/// Whether the interval between `low` and `high` holds no value (and `BTreeMap::range` would
/// panic on it).
fn interval_is_empty<T: PartialOrd>(low: Bound<&T>, high: Bound<&T>) -> bool {
    match (low, high) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a >= b
        }
        _ => false,
    }
}

/// The tighter of two lower bounds.
fn tighter_low<T: PartialOrd>(a: Bound<T>, b: Bound<T>) -> Bound<T> {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            if y > x || (y == x && matches!(b, Bound::Excluded(_))) {
                b
            } else {
                a
            }
        }
    }
}

/// The tighter of two upper bounds.
fn tighter_high<T: PartialOrd>(a: Bound<T>, b: Bound<T>) -> Bound<T> {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            if y < x || (y == x && matches!(b, Bound::Excluded(_))) {
                b
            } else {
                a
            }
        }
    }
}

/// The interval one range operator admits, as (low, high).
fn op_bounds<T>(op: RangeOp, value: T) -> (Bound<T>, Bound<T>) {
    match op {
        RangeOp::Gt => (Bound::Excluded(value), Bound::Unbounded),
        RangeOp::Gte => (Bound::Included(value), Bound::Unbounded),
        RangeOp::Lt => (Bound::Unbounded, Bound::Excluded(value)),
        RangeOp::Lte => (Bound::Unbounded, Bound::Included(value)),
    }
}

/// An interval of one kind of value (numbers or strings), from range operators ANDed on one
/// scalar column.
#[derive(Debug, Clone)]
enum Interval<'a> {
    Numbers(Bound<NumberKey>, Bound<NumberKey>),
    Strings(Bound<&'a str>, Bound<&'a str>),
}

#[derive(Debug, Clone, PartialEq)]
enum Values {
    /// `string` values, or `string[]` elements.
    Strings(BTreeMap<Box<str>, Rows>),
    Numbers(BTreeMap<NumberKey, Rows>),
    Booleans {
        trues: RoaringBitmap,
        falses: RoaringBitmap,
    },
}

/// One declared field.
#[derive(Debug, Clone, PartialEq)]
struct Column {
    kind: FieldType,
    /// Rows where the field has a value (not missing, not null).
    present: RoaringBitmap,
    values: Values,
}

impl Column {
    fn new(kind: FieldType) -> Self {
        let values = match kind {
            FieldType::String | FieldType::StringArray => Values::Strings(BTreeMap::new()),
            FieldType::Number => Values::Numbers(BTreeMap::new()),
            FieldType::Boolean => Values::Booleans {
                trues: RoaringBitmap::new(),
                falses: RoaringBitmap::new(),
            },
        };
        Column {
            kind,
            present: RoaringBitmap::new(),
            values,
        }
    }

    fn insert(&mut self, row: u32, value: &Value) {
        debug_assert!(self.kind.admits(value), "Columns::insert before check");
        if !self.kind.admits(value) {
            return;
        }
        self.present.insert(row);
        match (&mut self.values, value) {
            (Values::Strings(map), Value::String(s)) => insert_value(map, s.as_str().into(), row),
            (Values::Strings(map), Value::Array(items)) => {
                for item in items {
                    if let Value::String(s) = item {
                        insert_value(map, s.as_str().into(), row);
                    }
                }
            }
            (Values::Numbers(map), Value::Number(n)) => {
                if let Some(x) = n.as_f64() {
                    insert_value(map, NumberKey::new(x), row);
                }
            }
            (Values::Booleans { trues, falses }, Value::Bool(b)) => {
                if *b { trues } else { falses }.insert(row);
            }
            _ => {}
        }
    }

    fn remove(&mut self, row: u32, value: &Value) {
        if !self.kind.admits(value) {
            return;
        }
        self.present.remove(row);
        match (&mut self.values, value) {
            (Values::Strings(map), Value::String(s)) => remove_value(map, s.as_str(), row),
            (Values::Strings(map), Value::Array(items)) => {
                for item in items {
                    if let Value::String(s) = item {
                        remove_value(map, s.as_str(), row);
                    }
                }
            }
            (Values::Numbers(map), Value::Number(n)) => {
                if let Some(x) = n.as_f64() {
                    remove_value(map, &NumberKey::new(x), row);
                }
            }
            (Values::Booleans { trues, falses }, Value::Bool(b)) => {
                if *b { trues } else { falses }.remove(row);
            }
            _ => {}
        }
    }

    /// The rows holding `operand` (or an element equal to it, for `string[]`).
    fn equal_rows(&self, operand: &Scalar) -> Cow<'_, RoaringBitmap> {
        let rows = match (&self.values, operand) {
            (Values::Strings(map), Scalar::String(s)) => map.get(s.as_str()),
            (Values::Numbers(map), Scalar::Number(x)) => map.get(&NumberKey::new(*x)),
            (Values::Booleans { trues, falses }, Scalar::Boolean(b)) => {
                return Cow::Borrowed(if *b { trues } else { falses })
            }
            _ => None,
        };
        rows.map_or_else(|| Cow::Owned(RoaringBitmap::new()), Rows::to_bitmap)
    }

    fn interval_rows(&self, interval: &Interval<'_>) -> RoaringBitmap {
        match (&self.values, interval) {
            (Values::Numbers(map), Interval::Numbers(low, high)) => {
                if interval_is_empty(low.as_ref(), high.as_ref()) {
                    return RoaringBitmap::new();
                }
                union_rows(map.range((*low, *high)).map(|(_, rows)| rows))
            }
            (Values::Strings(map), Interval::Strings(low, high)) => {
                if interval_is_empty(low.as_ref(), high.as_ref()) {
                    return RoaringBitmap::new();
                }
                union_rows(map.range::<str, _>((*low, *high)).map(|(_, rows)| rows))
            }
            _ => RoaringBitmap::new(),
        }
    }

    /// The rows of `scope` that `test` admits.
    fn test_rows(&self, test: &Test, scope: &RoaringBitmap) -> RoaringBitmap {
        let admitted: Cow<'_, RoaringBitmap> = match test {
            Test::Eq(operand) => self.equal_rows(operand),
            Test::In(operands) => Cow::Owned(match &self.values {
                Values::Booleans { .. } => operands
                    .iter()
                    .map(|o| self.equal_rows(o).into_owned())
                    .union(),
                Values::Strings(map) => union_rows(operands.iter().filter_map(|o| match o {
                    Scalar::String(s) => map.get(s.as_str()),
                    _ => None,
                })),
                Values::Numbers(map) => union_rows(operands.iter().filter_map(|o| match o {
                    Scalar::Number(x) => map.get(&NumberKey::new(*x)),
                    _ => None,
                })),
            }),
            Test::Range(op, operand) => match self.interval_of(*op, operand) {
                Some(interval) => Cow::Owned(self.interval_rows(&interval)),
                None => Cow::Owned(RoaringBitmap::new()),
            },
            Test::Exists(true) => Cow::Borrowed(&self.present),
            Test::Exists(false) => return scope - &self.present,
            Test::Contains(operand) => {
                if self.kind == FieldType::StringArray {
                    self.equal_rows(operand)
                } else {
                    // A declared scalar field never holds an array.
                    Cow::Owned(RoaringBitmap::new())
                }
            }
        };
        scope & admitted.as_ref()
    }

    /// The interval of a range operator, when its operand is of the column's kind.
    fn interval_of<'a>(&self, op: RangeOp, operand: &'a Scalar) -> Option<Interval<'a>> {
        match (&self.values, operand) {
            (Values::Numbers(_), Scalar::Number(x)) => {
                let (low, high) = op_bounds(op, NumberKey::new(*x));
                Some(Interval::Numbers(low, high))
            }
            (Values::Strings(_), Scalar::String(s)) => {
                let (low, high) = op_bounds(op, s.as_str());
                Some(Interval::Strings(low, high))
            }
            _ => None,
        }
    }

    fn memory_bytes(&self) -> usize {
        const ENTRY_OVERHEAD: usize = 16; // B-tree node slack per entry, roughly
        let values = match &self.values {
            Values::Strings(map) => map
                .iter()
                .map(|(key, rows)| {
                    std::mem::size_of::<(Box<str>, Rows)>()
                        + ENTRY_OVERHEAD
                        + key.len()
                        + rows.heap_bytes()
                })
                .sum(),
            Values::Numbers(map) => map
                .values()
                .map(|rows| {
                    std::mem::size_of::<(NumberKey, Rows)>() + ENTRY_OVERHEAD + rows.heap_bytes()
                })
                .sum(),
            Values::Booleans { trues, falses } => {
                trues.serialized_size() + falses.serialized_size()
            }
        };
        std::mem::size_of::<Column>() + self.present.serialized_size() + values
    }
}

/// Declared metadata fields stored column-wise: per-value roaring bitmaps (strings, booleans,
/// string-array elements), ordered values → bitmaps for ranges (numbers, strings). Rows are u32.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Columns {
    fields: Vec<(String, FieldType)>,
    /// `columns[i]` stores `fields[i]`.
    columns: Vec<Column>,
}

impl Columns {
    /// Columns for `fields` (dotted paths, as in filters). An empty name, an empty path segment,
    /// a name starting with `$` or a name declared twice is an error.
    pub fn new(fields: Vec<(String, FieldType)>) -> Result<Self> {
        for (i, (name, _)) in fields.iter().enumerate() {
            if name.is_empty() {
                return Err(Error::invalid("fields: a field name is empty"));
            }
            if name.starts_with('$') {
                return Err(Error::invalid(format!(
                    "fields: \"{name}\" starts with $, which filters reserve for operators"
                )));
            }
            if name.split('.').any(str::is_empty) {
                return Err(Error::invalid(format!(
                    "fields: \"{name}\" has an empty segment (fields are dotted paths like \"a.b\")"
                )));
            }
            if fields[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(Error::invalid(format!(
                    "fields: \"{name}\" is declared twice"
                )));
            }
        }
        let columns = fields.iter().map(|(_, kind)| Column::new(*kind)).collect();
        Ok(Columns { fields, columns })
    }

    pub fn fields(&self) -> &[(String, FieldType)] {
        &self.fields
    }

    fn column(&self, path: &str) -> Option<&Column> {
        let index = self.fields.iter().position(|(name, _)| name == path)?;
        self.columns.get(index)
    }

    /// Checks an item's metadata against the declared types before anything is written: a
    /// declared field holding another type is an error (`metadata.year is declared number, got
    /// "abc"`); a missing or null field is fine.
    pub fn check(&self, metadata: Option<&Map<String, Value>>) -> Result<()> {
        for (name, kind) in &self.fields {
            if let Some(value) = lookup(metadata, name) {
                if !kind.admits(value) {
                    return Err(Error::invalid(format!(
                        "metadata.{name} is declared {}, got {}",
                        kind.name(),
                        describe(value)
                    )));
                }
            }
        }
        Ok(())
    }

    /// Indexes `row` with `metadata` (which [`Columns::check`] accepted). A row is inserted once:
    /// to change its metadata, remove it with the old metadata first.
    pub fn insert(&mut self, row: u32, metadata: Option<&Map<String, Value>>) {
        for ((name, _), column) in self.fields.iter().zip(&mut self.columns) {
            if let Some(value) = lookup(metadata, name) {
                column.insert(row, value);
            }
        }
    }

    /// Removes `row`, given the same metadata it was inserted with; no trace of it remains.
    pub fn remove(&mut self, row: u32, metadata: Option<&Map<String, Value>>) {
        for ((name, _), column) in self.fields.iter().zip(&mut self.columns) {
            if let Some(value) = lookup(metadata, name) {
                column.remove(row, value);
            }
        }
    }

    /// Heap and inline bytes of the columns (an estimate: bitmaps count at their serialized size,
    /// B-tree entries at their size plus a fixed slack).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .fields
                .iter()
                .map(|(name, _)| std::mem::size_of::<(String, FieldType)>() + name.len())
                .sum::<usize>()
            + self.columns.iter().map(Column::memory_bytes).sum::<usize>()
    }

    /// The rows of `live` that `filter` admits. Declared fields use the bitmaps; a subtree that
    /// reads no declared field is evaluated row by row, with `metadata_of(row)` giving the row's
    /// parsed metadata. Equals, for every row in `live`, `filter.matches(metadata_of(row))`.
    pub fn compile(
        &self,
        filter: &Filter,
        live: &RoaringBitmap,
        metadata_of: &dyn Fn(u32) -> Option<Map<String, Value>>,
    ) -> RoaringBitmap {
        if filter.matches_all() {
            return live.clone();
        }
        self.eval(filter.root(), live, metadata_of)
    }

    /// Whether `node` reads a declared field anywhere.
    fn uses_columns(&self, node: &Node) -> bool {
        match node {
            Node::And(children) | Node::Or(children) => {
                children.iter().any(|c| self.uses_columns(c))
            }
            Node::Not(inner) => self.uses_columns(inner),
            Node::Field(field) => self.column(&field.path).is_some(),
        }
    }

    /// The rows of `scope` that `node` admits.
    fn eval(
        &self,
        node: &Node,
        scope: &RoaringBitmap,
        metadata_of: &dyn Fn(u32) -> Option<Map<String, Value>>,
    ) -> RoaringBitmap {
        if scope.is_empty() {
            return RoaringBitmap::new();
        }
        if !self.uses_columns(node) {
            return row_by_row(scope, metadata_of, |metadata| node.matches(metadata));
        }
        match node {
            Node::And(children) => self.eval_and(children, scope, metadata_of),
            Node::Or(children) => {
                let (declared, undeclared): (Vec<&Node>, Vec<&Node>) =
                    children.iter().partition(|c| self.uses_columns(c));
                let mut admitted = declared
                    .iter()
                    .map(|c| self.eval(c, scope, metadata_of))
                    .union();
                if !undeclared.is_empty() {
                    let rest = scope - &admitted;
                    admitted |= row_by_row(&rest, metadata_of, |metadata| {
                        undeclared.iter().any(|c| c.matches(metadata))
                    });
                }
                admitted
            }
            Node::Not(inner) => scope - &self.eval(inner, scope, metadata_of),
            Node::Field(field) => match self.column(&field.path) {
                Some(column) => column.test_rows(&field.test, scope),
                None => row_by_row(scope, metadata_of, |metadata| node.matches(metadata)),
            },
        }
    }

    /// `$and`: range operators on one scalar column merge into one interval (a scalar has one
    /// value, so "some value in each range" is "the value in their intersection"); then the
    /// declared children narrow the scope one after another, and the rest are tested row by row
    /// on what remains, reading each row's metadata once.
    fn eval_and(
        &self,
        children: &[Node],
        scope: &RoaringBitmap,
        metadata_of: &dyn Fn(u32) -> Option<Map<String, Value>>,
    ) -> RoaringBitmap {
        let mut intervals: Vec<(&Column, Interval<'_>)> = Vec::new();
        let mut declared: Vec<&Node> = Vec::new();
        let mut undeclared: Vec<&Node> = Vec::new();
        for child in children {
            if let Node::Field(field) = child {
                if let (Test::Range(op, operand), Some(column)) =
                    (&field.test, self.column(&field.path))
                {
                    if column.kind != FieldType::StringArray {
                        if let Some(interval) = column.interval_of(*op, operand) {
                            merge_interval(&mut intervals, column, interval);
                            continue;
                        }
                    }
                }
            }
            if self.uses_columns(child) {
                declared.push(child);
            } else {
                undeclared.push(child);
            }
        }
        let mut admitted: Cow<'_, RoaringBitmap> = Cow::Borrowed(scope);
        for (column, interval) in &intervals {
            if admitted.is_empty() {
                break;
            }
            admitted = Cow::Owned(admitted.as_ref() & &column.interval_rows(interval));
        }
        for child in declared {
            if admitted.is_empty() {
                break;
            }
            admitted = Cow::Owned(self.eval(child, &admitted, metadata_of));
        }
        if !undeclared.is_empty() && !admitted.is_empty() {
            admitted = Cow::Owned(row_by_row(&admitted, metadata_of, |metadata| {
                undeclared.iter().all(|c| c.matches(metadata))
            }));
        }
        admitted.into_owned()
    }
}

/// Intersects `interval` into the one already gathered for `column`, or adds it.
fn merge_interval<'a>(
    intervals: &mut Vec<(&'a Column, Interval<'a>)>,
    column: &'a Column,
    interval: Interval<'a>,
) {
    let existing = intervals
        .iter_mut()
        .find(|(c, _)| std::ptr::eq(*c, column));
    let Some((_, current)) = existing else {
        intervals.push((column, interval));
        return;
    };
    *current = match (current.clone(), interval) {
        (Interval::Numbers(l1, h1), Interval::Numbers(l2, h2)) => {
            Interval::Numbers(tighter_low(l1, l2), tighter_high(h1, h2))
        }
        (Interval::Strings(l1, h1), Interval::Strings(l2, h2)) => {
            Interval::Strings(tighter_low(l1, l2), tighter_high(h1, h2))
        }
        // A column has one kind of value, so its intervals do too.
        (kept, _) => kept,
    };
}

/// The rows of `scope` whose metadata passes `admits`.
fn row_by_row(
    scope: &RoaringBitmap,
    metadata_of: &dyn Fn(u32) -> Option<Map<String, Value>>,
    admits: impl Fn(Option<&Map<String, Value>>) -> bool,
) -> RoaringBitmap {
    scope
        .iter()
        .filter(|&row| admits(metadata_of(row).as_ref()))
        .collect()
}
