//! Payload conventions built on InfoTable (§3.4, §12.4-§12.8).

use serde_json::Value;

use crate::basetype::{BaseType, TextKind};
use crate::error::DecodeError;
use crate::infotable::{FieldDef, InfoTable};
use crate::primitive::Primitive;

/// Field name of the "decode by property type" JSON form (§12.7).
pub const CONTENT_FIELD: &str = "_content_";

/// One property value of a property push (`UpdateSubscribedPropertyValues`).
#[derive(Clone, Debug, PartialEq)]
pub struct PropertyValue {
    /// Property name.
    pub name: String,
    /// The value (sent wrapped in a VARIANT).
    pub value: Primitive,
    /// Sample time, ms since the Unix epoch.
    pub time: i64,
    /// Quality, `"GOOD"` by default.
    pub quality: String,
}

impl InfoTable {
    /// A one-row table; each field's base type is its value's type.
    pub fn single_row<N: Into<String>>(
        pairs: impl IntoIterator<Item = (N, Primitive)>,
    ) -> InfoTable {
        let mut fields = Vec::new();
        let mut row = Vec::new();
        for (name, value) in pairs {
            fields.push(FieldDef::new(name, value.base_type()));
            row.push(value);
        }
        let mut t = InfoTable::new(fields);
        t.rows.push(row);
        t
    }

    /// The `_content_` form: one JSON field holding `json` re-serialised (as the EMS sends REST bodies).
    pub fn content(json: &Value) -> InfoTable {
        InfoTable::single_row([(
            CONTENT_FIELD,
            Primitive::Text(TextKind::JSON, json.to_string()),
        )])
    }

    /// If this table is the `_content_` form, its JSON value (unparsable text gives a JSON string).
    pub fn content_json(&self) -> Option<Value> {
        if self.shape.fields.len() != 1 || self.shape.fields[0].name != CONTENT_FIELD {
            return None;
        }
        let text = self.value(CONTENT_FIELD)?.as_str()?;
        Some(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())))
    }

    /// The property-push params `{values: INFOTABLE{name, value VARIANT, time, quality}}`,
    /// fields in the C SDK's order.
    pub fn property_push(values: &[PropertyValue]) -> InfoTable {
        let mut inner = InfoTable::new(vec![
            FieldDef::new("name", BaseType::String),
            FieldDef::new("value", BaseType::Variant),
            FieldDef::new("time", BaseType::DateTime),
            FieldDef::new("quality", BaseType::String),
        ]);
        for v in values {
            let value = match &v.value {
                p @ Primitive::Variant(_) => p.clone(),
                p => Primitive::variant(p.clone()),
            };
            inner.rows.push(vec![
                Primitive::String(v.name.clone()),
                value,
                Primitive::DateTime(v.time),
                Primitive::String(v.quality.clone()),
            ]);
        }
        let mut outer = InfoTable::new(vec![FieldDef::new("values", BaseType::InfoTable)]);
        outer.rows.push(vec![Primitive::InfoTable(Box::new(inner))]);
        outer
    }

    /// Reads a property push in any field order (EMS/LSR `value, time, name, quality`; C SDK
    /// `name, value, time, quality`). The VARIANT wrapper is removed; quality defaults to GOOD,
    /// time to 0.
    pub fn property_values(&self) -> Result<Vec<PropertyValue>, DecodeError> {
        let inner = self
            .value("values")
            .and_then(Primitive::as_infotable)
            .ok_or_else(|| DecodeError::Shape("no INFOTABLE field `values`".into()))?;
        let idx = |n: &str| inner.shape.index_of(n);
        let (Some(name_i), Some(value_i)) = (idx("name"), idx("value")) else {
            return Err(DecodeError::Shape(
                "property values need `name` and `value`".into(),
            ));
        };
        let (time_i, quality_i) = (idx("time"), idx("quality"));
        let mut out = Vec::with_capacity(inner.rows.len());
        for row in &inner.rows {
            let name = row
                .get(name_i)
                .and_then(Primitive::as_str)
                .ok_or_else(|| DecodeError::Shape("property value without a name".into()))?;
            let value = match row.get(value_i) {
                Some(Primitive::Variant(v)) => (**v).clone(),
                Some(p) => p.clone(),
                None => Primitive::Nothing,
            };
            let time = match time_i.and_then(|i| row.get(i)) {
                Some(Primitive::DateTime(t) | Primitive::Long(t)) => *t,
                Some(p) => p.as_f64().map_or(0, |f| f as i64),
                None => 0,
            };
            let quality = quality_i
                .and_then(|i| row.get(i))
                .and_then(Primitive::as_str)
                .unwrap_or("GOOD");
            out.push(PropertyValue {
                name: name.to_owned(),
                value,
                time,
                quality: quality.to_owned(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_round_trip() {
        let j: Value = serde_json::json!({"hasDeadband": true});
        let t = InfoTable::content(&j);
        assert_eq!(t.shape.fields[0].base_type, BaseType::Json);
        assert_eq!(t.content_json(), Some(j));
        assert_eq!(
            InfoTable::single_row([("x", Primitive::Number(1.0))]).content_json(),
            None
        );
    }

    #[test]
    fn push_round_trip() {
        let v = vec![PropertyValue {
            name: "T".into(),
            value: Primitive::Number(1.5),
            time: 9,
            quality: "GOOD".into(),
        }];
        let t = InfoTable::property_push(&v);
        assert_eq!(t.property_values().unwrap(), v);
        assert!(
            InfoTable::single_row([("x", Primitive::Number(1.0))])
                .property_values()
                .is_err()
        );
    }
}
