//! Field declarations ([`Schema`]), runtime values ([`Value`]) and records ([`Record`], [`Row`]).

use std::collections::HashMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::RulesError;
use crate::lexer::KEYWORDS;

/// The static type of a field or expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Type {
    /// An exact decimal (`rust_decimal::Decimal`); money is given in major units, e.g. `500000.00`.
    Number,
    String,
    Bool,
    /// A list of strings, e.g. the channels a customer used.
    StringList,
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Number => "number",
            Type::String => "string",
            Type::Bool => "bool",
            Type::StringList => "list of strings",
        })
    }
}

/// An owned runtime value. `Null` means "not known" (a missing field).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    #[default]
    Null,
    Number(Decimal),
    String(String),
    Bool(bool),
    List(Vec<String>),
}

impl Value {
    /// The type of the value, `None` for `Null`.
    pub fn type_of(&self) -> Option<Type> {
        match self {
            Value::Null => None,
            Value::Number(_) => Some(Type::Number),
            Value::String(_) => Some(Type::String),
            Value::Bool(_) => Some(Type::Bool),
            Value::List(_) => Some(Type::StringList),
        }
    }

    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Number(n) => ValueRef::Number(*n),
            Value::String(s) => ValueRef::String(s),
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::List(l) => ValueRef::List(l),
        }
    }

    fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Bool(_) => "bool",
            Value::List(_) => "list",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Number(n) => write!(f, "{n}"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::List(items) => write!(f, "{items:?}"),
        }
    }
}

impl From<Decimal> for Value {
    fn from(v: Decimal) -> Self {
        Value::Number(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Number(Decimal::from(v))
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Number(Decimal::from(v))
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Number(Decimal::from(v))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}
impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Self {
        Value::List(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A borrowed view of a value, returned by [`Record::get`] without cloning strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRef<'a> {
    Null,
    Number(Decimal),
    String(&'a str),
    Bool(bool),
    List(&'a [String]),
}

impl ValueRef<'_> {
    pub fn to_owned_value(&self) -> Value {
        match *self {
            ValueRef::Null => Value::Null,
            ValueRef::Number(n) => Value::Number(n),
            ValueRef::String(s) => Value::String(s.to_string()),
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::List(l) => Value::List(l.to_vec()),
        }
    }
}

/// Something that supplies field values by the index the [`Schema`] assigned.
///
/// Compiled expressions refer to fields by index, so evaluation never hashes a name. A value of
/// the wrong type, or an index the record does not have, reads as `Null`.
pub trait Record {
    fn get(&self, field: usize) -> ValueRef<'_>;
}

impl Record for [Value] {
    #[inline]
    fn get(&self, field: usize) -> ValueRef<'_> {
        self.get(field).map_or(ValueRef::Null, Value::as_ref)
    }
}

impl Record for Vec<Value> {
    #[inline]
    fn get(&self, field: usize) -> ValueRef<'_> {
        self.as_slice().get(field).map_or(ValueRef::Null, Value::as_ref)
    }
}

/// One declared field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: Type,
    /// What the field means (units, window); shown to rule authors.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub doc: String,
}

/// The fields a rule may use, with their types. Field `i` of a [`Record`] is `fields()[i]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Field>", into = "Vec<Field>")]
pub struct Schema {
    fields: Vec<Field>,
    by_name: HashMap<String, usize>,
}

impl Schema {
    pub fn new() -> Self {
        Schema::default()
    }

    /// Declares a field and returns its index.
    pub fn add(&mut self, name: &str, ty: Type) -> Result<usize, RulesError> {
        self.add_documented(name, ty, "")
    }

    /// Declares a field with a description.
    pub fn add_documented(&mut self, name: &str, ty: Type, doc: &str) -> Result<usize, RulesError> {
        if !is_valid_name(name) {
            return Err(RulesError::InvalidFieldName(name.to_string()));
        }
        if self.by_name.contains_key(name) {
            return Err(RulesError::DuplicateField(name.to_string()));
        }
        let index = self.fields.len();
        self.fields.push(Field { name: name.to_string(), ty, doc: doc.to_string() });
        self.by_name.insert(name.to_string(), index);
        Ok(index)
    }

    /// Builder form of [`Schema::add`].
    pub fn with(mut self, name: &str, ty: Type) -> Result<Self, RulesError> {
        self.add(name, ty)?;
        Ok(self)
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub fn field(&self, index: usize) -> Option<&Field> {
        self.fields.get(index)
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// A record with every field `Null`.
    pub fn row(&self) -> Row {
        Row { values: vec![Value::Null; self.fields.len()] }
    }
}

impl TryFrom<Vec<Field>> for Schema {
    type Error = RulesError;
    fn try_from(fields: Vec<Field>) -> Result<Self, Self::Error> {
        let mut schema = Schema::new();
        for f in fields {
            schema.add_documented(&f.name, f.ty, &f.doc)?;
        }
        Ok(schema)
    }
}

impl From<Schema> for Vec<Field> {
    fn from(s: Schema) -> Self {
        s.fields
    }
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&name)
}

/// A record laid out by a [`Schema`]: one value per declared field, type-checked on write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    /// Sets a field by name (hashes the name once; use [`Row::set_at`] in hot loops).
    pub fn set(&mut self, schema: &Schema, name: &str, value: impl Into<Value>) -> Result<(), RulesError> {
        let index = schema.index_of(name).ok_or_else(|| RulesError::UnknownField(name.to_string()))?;
        self.set_at(schema, index, value)
    }

    /// Sets a field by index, checking the value's type against the schema.
    pub fn set_at(&mut self, schema: &Schema, index: usize, value: impl Into<Value>) -> Result<(), RulesError> {
        let field = schema.field(index).ok_or_else(|| RulesError::UnknownField(format!("#{index}")))?;
        let value = value.into();
        if let Some(t) = value.type_of() {
            if t != field.ty {
                return Err(RulesError::FieldType {
                    field: field.name.clone(),
                    expected: field.ty,
                    got: value.kind_name(),
                });
            }
        }
        if self.values.len() < schema.len() {
            self.values.resize(schema.len(), Value::Null);
        }
        self.values[index] = value;
        Ok(())
    }

    pub fn get_value(&self, index: usize) -> &Value {
        const NULL: &Value = &Value::Null;
        self.values.as_slice().get(index).unwrap_or(NULL)
    }

    pub fn values(&self) -> &[Value] {
        &self.values
    }
}

impl Record for Row {
    #[inline]
    fn get(&self, field: usize) -> ValueRef<'_> {
        self.values.as_slice().get(field).map_or(ValueRef::Null, Value::as_ref)
    }
}
