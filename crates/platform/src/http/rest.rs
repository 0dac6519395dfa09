//! The ThingWorx-compatible REST API under `/Thingworx/Things/{name}`.
//! Requests about a connected thing are forwarded over its edge socket and
//! the edge's answer returned as a JSON InfoTable (§6.4); for a
//! disconnected thing, property reads return stored values and property
//! writes are stored on the platform.

use alwayson::{BaseType, Characteristic, Code, InfoTable};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::Caller;
use super::{AppError, parse_json};
use crate::convert::{infer_primitive, params_from_json};
use crate::edge::EdgeAnswer;
use crate::model::now_ms;
use crate::state::Platform;

async fn ensure_thing(platform: &Platform, name: &str) -> Result<(), AppError> {
    match platform.shared.store.thing(name).await? {
        Some(_) => Ok(()),
        None => Err(AppError::NotFound(format!("thing `{name}` not found"))),
    }
}

fn is_connected(platform: &Platform, name: &str) -> bool {
    platform.shared.registry.binding(name).is_some()
}

/// Turns an edge answer into a response: success → the content as JSON,
/// error code → its HTTP status with the reason.
fn answer(a: EdgeAnswer) -> Result<Response, AppError> {
    if a.code.is_success() {
        let body = a
            .body
            .content
            .map(|t| t.to_json())
            .unwrap_or_else(|| json!({}));
        return Ok(Json(body).into_response());
    }
    let from_content = a
        .body
        .content
        .as_ref()
        .and_then(|t| t.value("error"))
        .and_then(|p| p.as_str())
        .map(str::to_owned);
    let message = a
        .body
        .reason
        .or(from_content)
        .unwrap_or_else(|| format!("edge answered {}", a.code.name().unwrap_or("an error")));
    Err(AppError::Edge {
        status: a.code.http_status(),
        message,
    })
}

fn body_json(body: &Bytes) -> Result<Value, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    parse_json(body)
}

/// `GET /Thingworx/Things/{name}/Properties`
pub(crate) async fn get_properties(
    State(platform): State<Platform>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    ensure_thing(&platform, &name).await?;
    if is_connected(&platform, &name) {
        let a = platform
            .request(&name, Code::GET, Characteristic::PROPERTIES, "", None)
            .await?;
        return answer(a);
    }
    let table = platform
        .stored_table(&name, None)
        .await?
        .unwrap_or_else(|| InfoTable::new(Vec::new()));
    Ok(Json(table.to_json()).into_response())
}

/// `GET /Thingworx/Things/{name}/Properties/{prop}`
pub(crate) async fn get_property(
    State(platform): State<Platform>,
    _caller: Caller,
    Path((name, prop)): Path<(String, String)>,
) -> Result<Response, AppError> {
    ensure_thing(&platform, &name).await?;
    if is_connected(&platform, &name) {
        let a = platform
            .request(&name, Code::GET, Characteristic::PROPERTIES, &prop, None)
            .await?;
        return answer(a);
    }
    match platform.stored_table(&name, Some(&prop)).await? {
        Some(t) => Ok(Json(t.to_json()).into_response()),
        None => Err(AppError::NotFound(format!(
            "property `{prop}` of `{name}` has no value"
        ))),
    }
}

/// `PUT /Thingworx/Things/{name}/Properties/{prop}`: body `{"prop": value}`,
/// a bare value, or a JSON InfoTable. `{prop}` = `*` writes every property
/// in the body (an object of values or an InfoTable), as
/// `PUT …/Properties` does.
pub(crate) async fn put_property(
    State(platform): State<Platform>,
    caller: Caller,
    Path((name, prop)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, AppError> {
    caller.require_operator()?;
    let v = body_json(&body)?;
    if prop == "*" {
        return write_properties(&platform, &name, "*", v).await;
    }
    let v = match v {
        Value::Object(ref m) if m.contains_key(&prop) || crate::convert::is_infotable_json(&v) => v,
        Value::Null => {
            return Err(AppError::BadRequest(
                "a property write needs a value".into(),
            ));
        }
        other => json!({ prop.clone(): other }),
    };
    write_properties(&platform, &name, &prop, v).await
}

/// `PUT /Thingworx/Things/{name}/Properties`: several properties at once.
pub(crate) async fn put_properties(
    State(platform): State<Platform>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    caller.require_operator()?;
    let v = body_json(&body)?;
    write_properties(&platform, &name, "*", v).await
}

async fn write_properties(
    platform: &Platform,
    name: &str,
    target: &str,
    v: Value,
) -> Result<Response, AppError> {
    ensure_thing(platform, name).await?;
    let stored = platform.shared.store.properties(name).await?;
    let prefer = |n: &str| {
        stored
            .iter()
            .find(|s| s.name == n)
            .and_then(|s| BaseType::from_name(&s.base_type).ok())
    };
    let limits = &platform.shared.limits;
    let table = if crate::convert::is_infotable_json(&v) {
        InfoTable::from_json(&v, limits).map_err(|e| AppError::BadRequest(e.to_string()))?
    } else {
        let Value::Object(map) = &v else {
            return Err(AppError::BadRequest(
                "expected a JSON object of property values".into(),
            ));
        };
        if map.is_empty() {
            return Err(AppError::BadRequest("no property values given".into()));
        }
        InfoTable::single_row(
            map.iter()
                .map(|(k, v)| (k.clone(), infer_primitive(v, prefer(k), limits))),
        )
    };
    if let Some(f) = table
        .shape
        .fields
        .iter()
        .find(|f| f.name.is_empty() || f.name == "*")
    {
        return Err(AppError::BadRequest(format!(
            "`{}` is not a property name",
            f.name
        )));
    }
    if is_connected(platform, name) {
        let a = platform
            .request(
                name,
                Code::PUT,
                Characteristic::PROPERTIES,
                target,
                Some(table),
            )
            .await?;
        return answer(a).map(|_| Json(json!({})).into_response());
    }
    let now = now_ms();
    let values: Vec<alwayson::PropertyValue> = table
        .shape
        .fields
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            table
                .rows
                .first()
                .and_then(|r| r.get(i))
                .map(|p| alwayson::PropertyValue {
                    name: f.name.clone(),
                    value: p.clone(),
                    time: now,
                    quality: "GOOD".into(),
                })
        })
        .collect();
    platform.store_pushed(name, &values).await?;
    Ok(Json(json!({})).into_response())
}

/// `POST /Thingworx/Things/{name}/Services/{service}`: body = parameters
/// (plain object or JSON InfoTable), empty for none.
pub(crate) async fn call_service(
    State(platform): State<Platform>,
    caller: Caller,
    Path((name, service)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, AppError> {
    caller.require_operator()?;
    ensure_thing(&platform, &name).await?;
    let params = params_from_json(&body_json(&body)?, &platform.shared.limits)
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let a = platform
        .request(
            &name,
            Code::POST,
            Characteristic::SERVICES,
            &service,
            params,
        )
        .await?;
    answer(a)
}

/// `POST /Thingworx/Things/{name}/Events/{event}`: recorded on the platform.
pub(crate) async fn fire_event(
    State(platform): State<Platform>,
    caller: Caller,
    Path((name, event)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, AppError> {
    caller.require_operator()?;
    ensure_thing(&platform, &name).await?;
    let params = params_from_json(&body_json(&body)?, &platform.shared.limits)
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let fields = params.map(|t| t.shape.fields.len()).unwrap_or(0);
    tracing::info!(thing = %name, %event, fields, by = %caller.0.label(), "event fired");
    platform
        .audit("event", &caller.0.label(), &name, &event, "")
        .await;
    Ok(Json(json!({})).into_response())
}
