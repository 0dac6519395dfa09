//! What the async side knows of a thing: property definitions and current values,
//! service definitions, subscriptions and the push decision.

use serde_json::{Map, Value, json};

use crate::basetype;
use crate::config::PushType;
use crate::json::PushedValue;

/// One property and its current value.
#[derive(Debug, Clone)]
pub(crate) struct Property {
    pub name: String,
    pub base_type: &'static str,
    pub description: String,
    pub template_push: PushType,
    pub template_threshold: f64,
    /// Push type and threshold from the EMS's GetPropertySubscriptions.
    pub subscription: Option<(PushType, f64)>,
    pub scan_rate: u64,
    pub private: bool,
    pub data_change_type: String,
    pub data_change_threshold: f64,
    pub cache_time: i64,
    pub value: Value,
    pub time: i64,
    pub quality: String,
    pub init: Value,
    pub prev: Option<(Value, i64, String)>,
    pub update_time: i64,
    pub last_pushed: Option<Value>,
    /// Set by an explicit write (PUT, `me:setProperty`): ALWAYS pushes at the next tick.
    pub pending_set: bool,
    /// VALUE pushes at the next tick whatever the threshold.
    pub force_push: bool,
    pub next_scan: i64,
}

/// A service input or output field.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub name: String,
    pub base_type: String,
    pub description: String,
    pub aspects: Value,
}

/// One service definition (`serviceDefinitions.S(...)`).
#[derive(Debug, Clone)]
pub(crate) struct ServiceDef {
    pub name: String,
    pub inputs: Vec<Field>,
    pub output: Option<Field>,
    pub description: String,
    pub private: bool,
}

/// Push type and threshold in force: the EMS's subscription, else the template's.
fn effective(p: &Property) -> (PushType, f64) {
    match p.subscription {
        Some(s) => s,
        None => (p.template_push, p.template_threshold),
    }
}

/// Mutable state shared by the HTTP handlers, the driver and the Lua thread.
#[derive(Debug, Default)]
pub(crate) struct Model {
    pub props: Vec<Property>,
    pub subscriptions_acquired: bool,
    pub up_to_date: bool,
}

impl Model {
    pub fn get(&self, name: &str) -> Option<&Property> {
        self.props.iter().find(|p| p.name == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Property> {
        self.props.iter_mut().find(|p| p.name == name)
    }

    /// Applies GetPropertySubscriptions rows: listed properties take the EMS's push type and
    /// threshold, all others become NEVER (as the ThingWorx LSR does).
    pub fn apply_subscriptions(&mut self, rows: &[(String, PushType, f64)], now: i64) -> usize {
        let mut n = 0;
        for p in &mut self.props {
            p.subscription = Some((PushType::Never, 0.0));
        }
        for (name, pt, thr) in rows {
            if let Some(p) = self.get_mut(name) {
                p.subscription = Some((*pt, *thr));
                p.next_scan = now;
                if *pt == PushType::Value {
                    p.force_push = true;
                }
                n += 1;
            } else {
                tracing::warn!(property = %name, "subscribed property not found in the template");
            }
        }
        self.subscriptions_acquired = true;
        self.up_to_date = true;
        n
    }

    /// After (re-)registration: push the latest VALUE properties again.
    pub fn force_value_pushes(&mut self) {
        for p in &mut self.props {
            if effective(p).0 == PushType::Value {
                p.force_push = true;
            }
        }
    }

    /// Decides which properties to push now and marks them pushed.
    pub fn collect_pushes(&mut self, now: i64) -> Vec<PushedValue> {
        let mut out = Vec::new();
        for p in &mut self.props {
            let (pt, thr) = effective(p);
            let due = now >= p.next_scan;
            if due {
                p.next_scan = now + i64::try_from(p.scan_rate).unwrap_or(i64::MAX / 2);
            }
            let push = match pt {
                PushType::Never => false,
                PushType::Always => due || p.pending_set,
                PushType::Value => {
                    p.force_push
                        || ((due || p.pending_set)
                            && p.last_pushed.as_ref().is_none_or(|last| {
                                basetype::changed_beyond(p.base_type, last, &p.value, thr)
                            }))
                }
            };
            p.pending_set = false;
            p.force_push = false;
            if push {
                p.last_pushed = Some(p.value.clone());
                out.push(PushedValue {
                    name: p.name.clone(),
                    base_type: p.base_type.to_string(),
                    value: p.value.clone(),
                    time: p.time,
                    quality: p.quality.clone(),
                });
            }
        }
        out
    }

    /// The `GET .../Properties/` reply: every property with its settings, like the ThingWorx LSR.
    pub fn all_properties(&self) -> Value {
        let mut o = Map::new();
        for p in &self.props {
            let (pt, thr) = effective(p);
            let mut e = Map::new();
            e.insert("name".into(), json!(p.name));
            e.insert("baseType".into(), json!(p.base_type));
            e.insert("basetype".into(), json!(p.base_type));
            e.insert("value".into(), p.value.clone());
            e.insert("time".into(), json!(p.time));
            e.insert("quality".into(), json!(p.quality));
            e.insert("pushType".into(), json!(pt.name()));
            e.insert("pushThreshold".into(), crate::json::number(thr));
            e.insert("scanRate".into(), json!(p.scan_rate));
            e.insert("cacheTime".into(), json!(p.cache_time));
            e.insert("dataChangeType".into(), json!(p.data_change_type));
            e.insert(
                "dataChangeThreshold".into(),
                crate::json::number(p.data_change_threshold),
            );
            e.insert("updateTime".into(), json!(p.update_time));
            if p.private {
                e.insert("private".into(), json!(true));
            }
            if let Some((v, t, q)) = &p.prev {
                e.insert("prev".into(), json!({"value": v, "time": t, "quality": q}));
            }
            e.insert("init".into(), p.init.clone());
            o.insert(p.name.clone(), Value::Object(e));
        }
        Value::Object(o)
    }

    /// The `GetMetadata` reply (TCP stream 17 of the capture).
    pub fn metadata(&self, thing: &str, services: &[ServiceDef]) -> Value {
        let mut props = Map::new();
        for p in self.props.iter().filter(|p| !p.private) {
            let (pt, thr) = effective(p);
            props.insert(
                p.name.clone(),
                json!({
                    "aspects": {
                        "cacheTime": p.cache_time,
                        "isReadOnly": false,
                        "pushType": pt.name(),
                        "pushThreshold": crate::json::number(thr),
                        "defaultValue": p.value,
                        "dataChangeType": p.data_change_type,
                        "dataChangeThreshold": crate::json::number(p.data_change_threshold),
                        "isPersistent": false,
                    },
                    "sourceType": "ThingShape",
                    "name": p.name,
                    "tags": [],
                    "category": "",
                    "description": p.description,
                    "baseType": p.base_type,
                    "ordinal": 0,
                }),
            );
        }
        let mut svcs = Map::new();
        for s in services.iter().filter(|s| !s.private) {
            let mut inputs = Map::new();
            for f in &s.inputs {
                let mut fd = json!({"baseType": f.base_type, "name": f.name, "description": f.description, "ordinal": 0});
                if f.aspects.as_object().is_some_and(|a| !a.is_empty()) {
                    fd["aspects"] = f.aspects.clone();
                }
                inputs.insert(f.name.clone(), fd);
            }
            let (out_bt, out_desc, out_aspects) = match &s.output {
                Some(o) => (o.base_type.as_str(), o.description.as_str(), &o.aspects),
                None => ("NOTHING", "", &Value::Null),
            };
            let mut result = json!({"name": "result", "description": out_desc, "baseType": out_bt, "ordinal": 0});
            if out_aspects.as_object().is_some_and(|a| !a.is_empty()) {
                result["aspects"] = out_aspects.clone();
            }
            let out_fields = if out_bt == "NOTHING" {
                json!({})
            } else {
                json!({"result": result})
            };
            svcs.insert(
                s.name.clone(),
                json!({
                    "sourceType": "Thing",
                    "name": s.name,
                    "tags": [],
                    "category": "",
                    "Inputs": {"fieldDefinitions": Value::Object(inputs), "name": "", "description": "", "tags": []},
                    "description": s.description,
                    "Outputs": {"description": out_desc, "tags": [], "fieldDefinitions": out_fields, "baseType": out_bt, "name": "result"},
                }),
            );
        }
        json!({
            "isSystemObject": false,
            "name": thing,
            "propertyDefinitions": Value::Object(props),
            "serviceDefinitions": Value::Object(svcs),
            "type": "Things",
            "implementedShapes": ["metadata", "propsubscribe"],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(name: &str, pt: PushType) -> Property {
        Property {
            name: name.into(),
            base_type: "NUMBER",
            description: String::new(),
            template_push: pt,
            template_threshold: 0.0,
            subscription: None,
            scan_rate: 1000,
            private: false,
            data_change_type: "VALUE".into(),
            data_change_threshold: 0.0,
            cache_time: 0,
            value: json!(1),
            time: 0,
            quality: "GOOD".into(),
            init: json!({}),
            prev: None,
            update_time: 0,
            last_pushed: None,
            pending_set: false,
            force_push: false,
            next_scan: 0,
        }
    }

    #[test]
    fn value_threshold_and_always() {
        let mut m = Model {
            props: vec![prop("a", PushType::Value), prop("b", PushType::Always)],
            ..Model::default()
        };
        m.apply_subscriptions(
            &[
                ("a".into(), PushType::Value, 5.0),
                ("b".into(), PushType::Always, 0.0),
            ],
            0,
        );
        let names = |v: Vec<PushedValue>| v.into_iter().map(|p| p.name).collect::<Vec<_>>();
        assert_eq!(names(m.collect_pushes(0)), ["a", "b"]);
        // not due yet, nothing set: nothing
        assert!(m.collect_pushes(10).is_empty());
        m.props[0].value = json!(4);
        assert!(m.collect_pushes(1000).iter().all(|p| p.name == "b"));
        m.props[0].value = json!(7);
        assert_eq!(names(m.collect_pushes(2000)), ["a", "b"]);
    }

    #[test]
    fn unsubscribed_properties_are_not_pushed() {
        let mut m = Model {
            props: vec![prop("a", PushType::Always), prop("b", PushType::Always)],
            ..Model::default()
        };
        m.apply_subscriptions(&[("b".into(), PushType::Always, 0.0)], 0);
        let pushed = m.collect_pushes(0);
        assert_eq!(pushed.len(), 1);
        assert_eq!(pushed[0].name, "b");
    }
}
