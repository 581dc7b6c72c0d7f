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
//! one vector, sorts it once and merges it with the bitmaps of the shared values. On a scalar
//! column (one value per row), a range over more than half of the distinct values is taken as
//! the present rows minus those of the values outside it.
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

/// The rows holding a value of `map` between `low` and `high`. With `present` (the column holds
/// one value per row, and these are the rows that have one), a range covering more than half of
/// the values is computed as `present` minus the rows of the values outside it.
fn range_rows<K, Q>(
    map: &BTreeMap<K, Rows>,
    low: Bound<&Q>,
    high: Bound<&Q>,
    present: Option<&RoaringBitmap>,
) -> RoaringBitmap
where
    K: Ord + std::borrow::Borrow<Q>,
    Q: Ord + ?Sized,
{
    if interval_is_empty(low, high) {
        return RoaringBitmap::new();
    }
    if let Some(present) = present {
        let half = map.len() / 2;
        if map.range::<Q, _>((low, high)).take(half + 1).count() > half {
            let below = match low {
                Bound::Included(x) => Some((Bound::Unbounded, Bound::Excluded(x))),
                Bound::Excluded(x) => Some((Bound::Unbounded, Bound::Included(x))),
                Bound::Unbounded => None,
            };
            let above = match high {
                Bound::Included(x) => Some((Bound::Excluded(x), Bound::Unbounded)),
                Bound::Excluded(x) => Some((Bound::Included(x), Bound::Unbounded)),
                Bound::Unbounded => None,
            };
            let outside = below
                .into_iter()
                .chain(above)
                .flat_map(|range| map.range::<Q, _>(range))
                .map(|(_, rows)| rows);
            return present - &union_rows(outside);
        }
    }
    union_rows(map.range::<Q, _>((low, high)).map(|(_, rows)| rows))
}

/// Whether the interval between `low` and `high` holds no value (and `BTreeMap::range` would
/// panic on it).
fn interval_is_empty<T: PartialOrd + ?Sized>(low: Bound<&T>, high: Bound<&T>) -> bool {
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
        // One value per row: a wide range is cheaper as the present rows minus the ones outside.
        let present = (self.kind != FieldType::StringArray).then_some(&self.present);
        match (&self.values, interval) {
            (Values::Numbers(map), Interval::Numbers(low, high)) => {
                range_rows(map, low.as_ref(), high.as_ref(), present)
            }
            (Values::Strings(map), Interval::Strings(low, high)) => {
                range_rows(map, *low, *high, present)
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
    let existing = intervals.iter_mut().find(|(c, _)| std::ptr::eq(*c, column));
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;
    use std::collections::HashMap;

    type Metadata = Map<String, Value>;

    // ---- an independent reference: evaluates the filter's JSON directly ----

    /// The value at a dotted path, through `Value::pointer` (test keys hold no '/' or '~').
    fn reference_lookup(metadata: Option<&Metadata>, path: &str) -> Option<Value> {
        let root = Value::Object(metadata?.clone());
        let pointer = format!("/{}", path.replace('.', "/"));
        let value = root.pointer(&pointer)?;
        // A pointer also indexes arrays ("/arr/0"); filter paths do not.
        let mut walked = &root;
        for segment in path.split('.') {
            walked = walked.as_object()?.get(segment)?;
        }
        assert_eq!(walked, value);
        (!value.is_null()).then(|| value.clone())
    }

    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
            (Value::String(x), Value::String(y)) => x == y,
            (Value::Bool(x), Value::Bool(y)) => x == y,
            _ => false,
        }
    }

    fn ordered(a: &Value, b: &Value) -> Option<Ordering> {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
            (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
            _ => None,
        }
    }

    fn reference(filter: &Value, metadata: Option<&Metadata>) -> bool {
        let clauses = filter.as_object().expect("filter object");
        clauses.iter().all(|(key, operand)| match key.as_str() {
            "$and" => operand
                .as_array()
                .expect("array")
                .iter()
                .all(|f| reference(f, metadata)),
            "$or" => operand
                .as_array()
                .expect("array")
                .iter()
                .any(|f| reference(f, metadata)),
            "$not" => !reference(operand, metadata),
            path => reference_field(reference_lookup(metadata, path).as_ref(), operand),
        })
    }

    fn reference_field(value: Option<&Value>, condition: &Value) -> bool {
        match condition {
            Value::Object(operators) => operators
                .iter()
                .all(|(op, operand)| reference_operator(value, op, operand)),
            scalar => reference_operator(value, "$eq", scalar),
        }
    }

    fn reference_operator(value: Option<&Value>, op: &str, operand: &Value) -> bool {
        let candidates: Vec<&Value> = match value {
            None => Vec::new(),
            Some(Value::Array(items)) => items.iter().collect(),
            Some(single) => vec![single],
        };
        let any_ordered = |wanted: &[Ordering]| {
            candidates
                .iter()
                .any(|c| ordered(c, operand).is_some_and(|o| wanted.contains(&o)))
        };
        match op {
            "$eq" => candidates.iter().any(|c| same(c, operand)),
            "$ne" => !reference_operator(value, "$eq", operand),
            "$gt" => any_ordered(&[Ordering::Greater]),
            "$gte" => any_ordered(&[Ordering::Greater, Ordering::Equal]),
            "$lt" => any_ordered(&[Ordering::Less]),
            "$lte" => any_ordered(&[Ordering::Less, Ordering::Equal]),
            "$in" => operand
                .as_array()
                .expect("array")
                .iter()
                .any(|o| reference_operator(value, "$eq", o)),
            "$nin" => !reference_operator(value, "$in", operand),
            "$exists" => value.is_some() == operand.as_bool().expect("bool"),
            "$contains" => {
                matches!(value, Some(Value::Array(items)) if items.iter().any(|c| same(c, operand)))
            }
            "$not" => !reference_field(value, operand),
            other => panic!("reference: unknown operator {other}"),
        }
    }

    // ---- random data and filters ----

    fn random_string(rng: &mut StdRng) -> Value {
        let pool = ["", "a", "ab", "b", "B", "é", "z", "red", "blue"];
        json!(pool[rng.gen_range(0..pool.len())])
    }

    fn random_number(rng: &mut StdRng) -> Value {
        match rng.gen_range(0..9) {
            0 => json!(0),
            1 => json!(-0.0),
            2 => json!(1),
            3 => json!(1.0),
            4 => json!(2.5),
            5 => json!(-3),
            6 => json!(10),
            7 => json!(u64::MAX),
            _ => json!(rng.gen_range(-5..15)),
        }
    }

    fn random_scalar(rng: &mut StdRng) -> Value {
        match rng.gen_range(0..5) {
            0 | 1 => random_string(rng),
            2 | 3 => random_number(rng),
            _ => json!(rng.gen_bool(0.5)),
        }
    }

    fn random_any(rng: &mut StdRng) -> Value {
        match rng.gen_range(0..10) {
            0 => Value::Null,
            1 | 2 => Value::Array(
                (0..rng.gen_range(0..4))
                    .map(|_| random_scalar(rng))
                    .collect(),
            ),
            3 => json!({ "x": random_scalar(rng) }),
            4 => json!([[random_scalar(rng)]]),
            _ => random_scalar(rng),
        }
    }

    fn maybe(rng: &mut StdRng, map: &mut Metadata, key: &str, value: Value) {
        if rng.gen_bool(0.75) {
            map.insert(key.to_string(), value);
        }
    }

    /// Metadata with the declared fields' types (or null), undeclared fields of any kind, and
    /// nested objects.
    fn random_metadata(rng: &mut StdRng) -> Option<Metadata> {
        if rng.gen_bool(0.08) {
            return None;
        }
        let mut map = Metadata::new();
        let s = if rng.gen_bool(0.1) {
            Value::Null
        } else {
            random_string(rng)
        };
        maybe(rng, &mut map, "s", s);
        let n = if rng.gen_bool(0.1) {
            Value::Null
        } else {
            random_number(rng)
        };
        maybe(rng, &mut map, "n", n);
        let b = json!(rng.gen_bool(0.5));
        maybe(rng, &mut map, "b", b);
        let tags = Value::Array(
            (0..rng.gen_range(0..4))
                .map(|_| random_string(rng))
                .collect(),
        );
        maybe(rng, &mut map, "tags", tags);
        let object = if rng.gen_bool(0.15) {
            random_scalar(rng)
        } else {
            let mut inner = Metadata::new();
            let x = random_number(rng);
            maybe(rng, &mut inner, "x", x);
            let y = random_any(rng);
            maybe(rng, &mut inner, "y", y);
            Value::Object(inner)
        };
        maybe(rng, &mut map, "obj", object);
        let u = random_any(rng);
        maybe(rng, &mut map, "u", u);
        let deep = json!({ "a": { "b": random_scalar(rng) } });
        maybe(rng, &mut map, "deep", deep);
        Some(map)
    }

    const FILTER_FIELDS: [&str; 11] = [
        "s", "n", "b", "tags", "obj.x", "obj.y", "u", "deep.a.b", "deep.a", "obj", "absent",
    ];

    fn random_operand(rng: &mut StdRng, op: &str) -> Value {
        match op {
            "$in" | "$nin" => Value::Array(
                (0..rng.gen_range(0..4))
                    .map(|_| random_scalar(rng))
                    .collect(),
            ),
            "$exists" => json!(rng.gen_bool(0.5)),
            "$gt" | "$gte" | "$lt" | "$lte" => {
                if rng.gen_bool(0.5) {
                    random_number(rng)
                } else {
                    random_string(rng)
                }
            }
            _ => random_scalar(rng),
        }
    }

    fn random_operators(rng: &mut StdRng, depth: usize) -> Value {
        const OPERATORS: [&str; 11] = crate::collection::filter::FIELD_OPERATORS;
        let mut operators = Metadata::new();
        for _ in 0..rng.gen_range(1..=3) {
            let op = OPERATORS[rng.gen_range(0..OPERATORS.len())];
            let operand = if op == "$not" {
                if depth >= 3 {
                    continue;
                }
                random_operators(rng, depth + 1)
            } else {
                random_operand(rng, op)
            };
            operators.insert(op.to_string(), operand);
        }
        if operators.is_empty() {
            operators.insert("$exists".to_string(), json!(true));
        }
        Value::Object(operators)
    }

    fn random_filter(rng: &mut StdRng, depth: usize) -> Value {
        let mut filter = Metadata::new();
        for _ in 0..rng.gen_range(0..=3) {
            if depth < 4 && rng.gen_bool(0.3) {
                let branches = |rng: &mut StdRng| {
                    Value::Array(
                        (0..rng.gen_range(1..=3))
                            .map(|_| random_filter(rng, depth + 1))
                            .collect(),
                    )
                };
                match rng.gen_range(0..3) {
                    0 => filter.insert("$and".to_string(), branches(rng)),
                    1 => filter.insert("$or".to_string(), branches(rng)),
                    _ => filter.insert("$not".to_string(), random_filter(rng, depth + 1)),
                };
            } else {
                let field = FILTER_FIELDS[rng.gen_range(0..FILTER_FIELDS.len())];
                let condition = if rng.gen_bool(0.3) {
                    random_scalar(rng)
                } else {
                    random_operators(rng, depth)
                };
                filter.insert(field.to_string(), condition);
            }
        }
        Value::Object(filter)
    }

    fn declared() -> Vec<(String, FieldType)> {
        vec![
            ("s".to_string(), FieldType::String),
            ("n".to_string(), FieldType::Number),
            ("b".to_string(), FieldType::Boolean),
            ("tags".to_string(), FieldType::StringArray),
            ("obj.x".to_string(), FieldType::Number),
            ("deep.a.b".to_string(), FieldType::String),
        ]
    }

    /// A collection's rows: metadata by row, the columns over it, and the live rows.
    struct Table {
        columns: Columns,
        metadata: HashMap<u32, Option<Metadata>>,
        live: RoaringBitmap,
    }

    impl Table {
        fn new(fields: Vec<(String, FieldType)>) -> Self {
            Table {
                columns: Columns::new(fields).expect("valid fields"),
                metadata: HashMap::new(),
                live: RoaringBitmap::new(),
            }
        }

        /// Inserts or replaces `row`, as an upsert does; metadata that `check` refuses is
        /// skipped, as an upsert would refuse it.
        fn upsert(&mut self, row: u32, metadata: Option<Metadata>) -> bool {
            if self.columns.check(metadata.as_ref()).is_err() {
                return false;
            }
            self.delete(row);
            self.columns.insert(row, metadata.as_ref());
            self.metadata.insert(row, metadata);
            self.live.insert(row);
            true
        }

        fn delete(&mut self, row: u32) {
            if let Some(old) = self.metadata.remove(&row) {
                self.columns.remove(row, old.as_ref());
                self.live.remove(row);
            }
        }

        fn compile(&self, filter: &Filter, live: &RoaringBitmap) -> RoaringBitmap {
            let metadata_of = |row: u32| self.metadata.get(&row).cloned().flatten();
            self.columns.compile(filter, live, &metadata_of)
        }
    }

    fn random_table(rng: &mut StdRng, fields: Vec<(String, FieldType)>, rows: u32) -> Table {
        let mut table = Table::new(fields);
        for _ in 0..rows * 2 {
            // Sparse rows across two bitmap containers, upserted and deleted at random.
            let row = rng.gen_range(0..rows) * 331;
            if rng.gen_bool(0.15) {
                table.delete(row);
            } else {
                table.upsert(row, random_metadata(rng));
            }
        }
        table
    }

    #[test]
    fn compiled_filters_equal_the_reference_on_random_data() {
        let declarations = [declared(), Vec::new(), declared()[..3].to_vec()];
        let mut checked_rows = 0usize;
        let mut admitted_rows = 0usize;
        for (case, fields) in declarations.into_iter().enumerate() {
            let mut rng = StdRng::seed_from_u64(19 + case as u64);
            let table = random_table(&mut rng, fields, 400);
            let half: RoaringBitmap = table.live.iter().filter(|r| r % 2 == 0).collect();
            for _ in 0..1500 {
                let json = random_filter(&mut rng, 0);
                let filter = Filter::parse(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
                for live in [&table.live, &half] {
                    let compiled = table.compile(&filter, live);
                    let expected: RoaringBitmap = live
                        .iter()
                        .filter(|row| {
                            let metadata = table.metadata[row].as_ref();
                            let by_reference = reference(&json, metadata);
                            assert_eq!(
                                filter.matches(metadata),
                                by_reference,
                                "matches() vs reference for {json} on {metadata:?}"
                            );
                            by_reference
                        })
                        .collect();
                    assert_eq!(compiled, expected, "compile() vs reference for {json}");
                    checked_rows += live.len() as usize;
                    admitted_rows += expected.len() as usize;
                }
            }
        }
        // The random filters must be neither all-admitting nor all-refusing.
        let share = admitted_rows as f64 / checked_rows as f64;
        assert!((0.2..0.8).contains(&share), "admitted share {share}");
    }

    #[test]
    fn ranges_merge_on_scalar_columns_only() {
        let mut table = Table::new(declared());
        let items = [
            json!({"n": 1, "s": "a", "tags": ["a", "z"]}),
            json!({"n": 5, "s": "m", "tags": ["m"]}),
            json!({"n": 9, "s": "z", "tags": []}),
            json!({"n": 5.0, "s": "m"}),
        ];
        for (row, item) in items.iter().enumerate() {
            assert!(table.upsert(row as u32, item.as_object().cloned()));
        }
        let rows = |filter: Value| -> Vec<u32> {
            let parsed = Filter::parse(&filter).expect("valid");
            table.compile(&parsed, &table.live).iter().collect()
        };
        assert_eq!(rows(json!({"n": {"$gt": 1, "$lt": 9}})), vec![1, 3]);
        assert_eq!(rows(json!({"n": {"$gte": 5, "$lte": 5}})), vec![1, 3]);
        assert_eq!(rows(json!({"n": {"$gt": 5, "$lt": 5}})), Vec::<u32>::new());
        assert_eq!(rows(json!({"n": {"$gt": 9, "$lt": 1}})), Vec::<u32>::new());
        assert_eq!(rows(json!({"n": {"$gte": 5, "$lt": 5}})), Vec::<u32>::new());
        assert_eq!(
            rows(json!({"$and": [{"n": {"$gt": 1}}, {"n": {"$gt": 4, "$lte": 9}}]})),
            vec![1, 2, 3]
        );
        assert_eq!(rows(json!({"s": {"$gt": "a", "$lt": "z"}})), vec![1, 3]);
        assert_eq!(
            rows(json!({"n": {"$gt": 1, "$lt": "z"}})),
            Vec::<u32>::new()
        );
        // Equal bounds: the exclusive one wins, whichever comes first.
        assert_eq!(
            rows(json!({"$and": [{"n": {"$gte": 5}}, {"n": {"$gt": 5}}]})),
            vec![2]
        );
        assert_eq!(
            rows(json!({"$and": [{"n": {"$gt": 5}}, {"n": {"$gte": 5}}]})),
            vec![2]
        );
        assert_eq!(
            rows(json!({"$and": [{"n": {"$lte": 5}}, {"n": {"$lt": 5}}]})),
            vec![0]
        );
        assert_eq!(
            rows(json!({"$and": [{"s": {"$lt": "m"}}, {"s": {"$lte": "m"}}]})),
            vec![0]
        );
        assert_eq!(
            rows(json!({"$and": [{"s": {"$gte": "m"}}, {"s": {"$gt": "m"}}]})),
            vec![2]
        );
        // An array may meet each bound with a different element.
        assert_eq!(rows(json!({"tags": {"$gt": "b", "$lt": "b"}})), vec![0]);
        assert_eq!(rows(json!({"tags": {"$gt": "b", "$lt": "y"}})), vec![0, 1]);
        assert_eq!(rows(json!({"n": 5})), vec![1, 3]);
        assert_eq!(rows(json!({"n": {"$ne": 5}})), vec![0, 2]);
        assert_eq!(rows(json!({"tags": {"$exists": true}})), vec![0, 1, 2]);
        assert_eq!(rows(json!({"tags": {"$nin": ["a", "m"]}})), vec![2, 3]);
    }

    #[test]
    fn remove_leaves_no_trace() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut full = Table::new(declared());
        let mut kept = Table::new(declared());
        let mut removed = Vec::new();
        for row in 0..3000u32 {
            let metadata = random_metadata(&mut rng);
            if !full.upsert(row, metadata.clone()) {
                continue;
            }
            if rng.gen_bool(0.3) {
                removed.push(row);
            } else {
                kept.upsert(row, metadata);
            }
        }
        assert!(removed.len() > 500);
        for &row in &removed {
            full.delete(row);
        }
        assert_eq!(
            full.columns, kept.columns,
            "removing rows gives the columns of never having them"
        );
        for &row in &removed {
            full.upsert(
                row,
                Some(json!({"n": 1}).as_object().cloned().unwrap_or_default()),
            );
            full.delete(row);
        }
        assert_eq!(full.columns, kept.columns);
        // Compiled over every row ever used, a positive filter admits no removed row.
        let everything: RoaringBitmap = (0..3000).collect();
        for filter in [
            json!({"n": {"$gte": -1e300}}),
            json!({"tags": {"$exists": true}}),
            json!({"b": {"$in": [true, false]}}),
        ] {
            let parsed = Filter::parse(&filter).expect("valid");
            let rows = full.compile(&parsed, &everything);
            assert!(removed.iter().all(|row| !rows.contains(*row)), "{filter}");
        }
        let mut emptied = kept;
        let rows: Vec<u32> = emptied.live.iter().collect();
        for row in rows {
            emptied.delete(row);
        }
        assert_eq!(emptied.columns, Columns::new(declared()).expect("valid"));
    }

    #[test]
    fn one_row_value_sets_stay_inline() {
        let mut columns = Columns::new(vec![("n".to_string(), FieldType::Number)]).expect("valid");
        for row in 0..1000u32 {
            columns.insert(row, json!({ "n": row }).as_object());
        }
        let Values::Numbers(map) = &columns.columns[0].values else {
            panic!("a number column")
        };
        assert!(map.values().all(|rows| matches!(rows, Rows::One(_))));
        let filter = Filter::parse(&json!({"n": {"$gte": 100, "$lt": 600}})).expect("valid");
        let live: RoaringBitmap = (0..1000).collect();
        let rows = columns.compile(&filter, &live, &|_| None);
        assert_eq!(rows, (100..600).collect::<RoaringBitmap>());
        let per_row = columns.memory_bytes() as f64 / 1000.0;
        assert!(per_row < 120.0, "{per_row} bytes per row");
    }

    #[test]
    fn check_refuses_values_of_another_type() {
        let columns = Columns::new(declared()).expect("valid");
        let refused = [
            (
                json!({"n": "abc"}),
                r#"metadata.n is declared number, got "abc""#,
            ),
            (json!({"s": 1}), "metadata.s is declared string, got 1"),
            (
                json!({"b": "true"}),
                r#"metadata.b is declared boolean, got "true""#,
            ),
            (
                json!({"tags": "red"}),
                r#"metadata.tags is declared string[], got "red""#,
            ),
            (
                json!({"tags": ["red", 1]}),
                r#"metadata.tags is declared string[], got ["red",1]"#,
            ),
            (
                json!({"tags": [null]}),
                "metadata.tags is declared string[], got [null]",
            ),
            (
                json!({"s": ["a"]}),
                r#"metadata.s is declared string, got ["a"]"#,
            ),
            (
                json!({"obj": {"x": true}}),
                "metadata.obj.x is declared number, got true",
            ),
            (
                json!({"deep": {"a": {"b": {"c": 1}}}}),
                r#"metadata.deep.a.b is declared string, got {"c":1}"#,
            ),
        ];
        for (metadata, expected) in refused {
            let error = columns.check(metadata.as_object()).expect_err("refused");
            assert_eq!(error.code(), "ERR_INVALID_ARGUMENT");
            assert_eq!(error.to_string(), expected);
        }
        let accepted = [
            json!({}),
            json!({"n": null, "s": null, "tags": null, "b": null}),
            json!({"n": 1.5, "s": "", "b": false, "tags": [], "other": [1, {"x": null}]}),
            json!({"obj": "not an object", "deep": {"a": 5}}),
            json!({"obj": {"x": -0.0}, "deep": {"a": {"b": "z"}}, "tags": ["a", "a"]}),
        ];
        for metadata in accepted {
            assert!(columns.check(metadata.as_object()).is_ok(), "{metadata}");
        }
        assert!(columns.check(None).is_ok());
    }

    #[test]
    fn declarations_are_validated() {
        let field = |name: &str| (name.to_string(), FieldType::String);
        let refused = [
            (vec![field("")], "fields: a field name is empty"),
            (
                vec![field("$a")],
                r#"fields: "$a" starts with $, which filters reserve for operators"#,
            ),
            (
                vec![field("a..b")],
                r#"fields: "a..b" has an empty segment (fields are dotted paths like "a.b")"#,
            ),
            (
                vec![field("a.")],
                r#"fields: "a." has an empty segment (fields are dotted paths like "a.b")"#,
            ),
            (
                vec![field("a"), field("b"), field("a")],
                r#"fields: "a" is declared twice"#,
            ),
        ];
        for (fields, expected) in refused {
            let error = Columns::new(fields).expect_err("refused");
            assert_eq!(error.code(), "ERR_INVALID_ARGUMENT");
            assert_eq!(error.to_string(), expected);
        }
        let columns = Columns::new(vec![field("a.b"), field("a")]).expect("valid");
        assert_eq!(columns.fields(), &[field("a.b"), field("a")]);
    }

    #[test]
    fn field_types_round_trip() {
        for kind in [
            FieldType::String,
            FieldType::Number,
            FieldType::Boolean,
            FieldType::StringArray,
        ] {
            assert_eq!(FieldType::parse(kind.name()), Ok(kind));
            assert_eq!(FieldType::from_code(kind.code()), Some(kind));
        }
        assert_eq!(FieldType::from_code(0), None);
        assert_eq!(FieldType::from_code(5), None);
        let error = FieldType::parse("int").expect_err("unknown");
        assert_eq!(
            error.to_string(),
            r#"unknown field type "int": expected "string", "number", "boolean" or "string[]""#
        );
    }
}
