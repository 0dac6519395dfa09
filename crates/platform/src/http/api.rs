//! The JSON management API under `/api/v1/`: login, users, app keys,
//! things and remote interfaces, audit, remote-access session history.
//! Administrators manage; every role may read things.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::auth::{Caller, cookie};
use super::session::COOKIE;
use super::{AppError, parse_json};
use crate::admin::hash_password_blocking;
use crate::model::{Cidr, NewAppKey, NewThing, RemoteInterface, Role, now_ms};
use crate::secret;
use crate::state::Platform;
use crate::store::AuditFilter;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    #[serde(alias = "user", alias = "name")]
    username: String,
    password: String,
}

/// `POST /api/v1/login`
pub(crate) async fn login(
    State(platform): State<Platform>,
    request: axum::extract::Request,
) -> Result<Response, AppError> {
    let (parts, body) = request.into_parts();
    let peer = super::auth::peer_of(&parts);
    let body = axum::body::to_bytes(body, platform.shared.config.http.max_body_size)
        .await
        .map_err(|e| AppError::BadRequest(format!("cannot read body: {e}")))?;
    let login: Login = parse_json(&body)?;
    let principal = platform
        .authenticate_password(&login.username, &login.password, peer)
        .await?;
    if principal.role == Role::ConnectionServer {
        return Err(AppError::Forbidden(super::auth::LINK_ONLY.into()));
    }
    let (token, csrf) = platform.shared.sessions.create(&principal.user).await?;
    let cookie = format!(
        "{COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
        platform.shared.sessions.ttl_secs()
    );
    platform
        .audit(
            "login",
            &principal.user,
            &principal.user,
            "",
            &peer.to_string(),
        )
        .await;
    let mut resp = Json(json!({"user": principal.user, "role": principal.role, "csrfToken": csrf}))
        .into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| AppError::Internal(e.to_string()))?,
    );
    Ok(resp)
}

/// `POST /api/v1/logout`
pub(crate) async fn logout(
    State(platform): State<Platform>,
    _caller: Caller,
    request: axum::extract::Request,
) -> Result<Response, AppError> {
    let (parts, _) = request.into_parts();
    if let Some(token) = cookie(&parts, COOKIE) {
        platform.shared.sessions.remove(token).await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "tether_session=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    Ok(resp)
}

/// `GET /api/v1/me`
pub(crate) async fn me(caller: Caller) -> Json<serde_json::Value> {
    Json(json!({
        "user": caller.0.user,
        "role": caller.0.role,
        "appKey": caller.0.app_key.as_ref().map(|k| k.name.clone()),
    }))
}

/// `GET /api/v1/users`
pub(crate) async fn list_users(
    State(platform): State<Platform>,
    caller: Caller,
) -> Result<Response, AppError> {
    caller.require_admin()?;
    Ok(Json(platform.shared.store.list_users().await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    role: Role,
    password: String,
}

/// `POST /api/v1/users`
pub(crate) async fn create_user(
    State(platform): State<Platform>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, AppError> {
    caller.require_admin()?;
    let new: NewUser = parse_json(&body)?;
    if new.name.trim().is_empty() || new.password.len() < 8 {
        return Err(AppError::BadRequest(
            "a user needs a name and a password of at least 8 characters".into(),
        ));
    }
    let hash = hash_password_blocking(new.password).await?;
    let user = platform
        .shared
        .store
        .create_user(&new.name, &hash, new.role)
        .await?;
    platform
        .audit(
            "admin.user.add",
            &caller.0.label(),
            &user.name,
            user.role.as_str(),
            "",
        )
        .await;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserUpdate {
    role: Option<Role>,
    password: Option<String>,
}

/// `PATCH /api/v1/users/{name}`
pub(crate) async fn update_user(
    State(platform): State<Platform>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    caller.require_admin()?;
    let upd: UserUpdate = parse_json(&body)?;
    let new_password = upd.password.is_some();
    let hash = match upd.password {
        Some(p) if p.len() < 8 => {
            return Err(AppError::BadRequest(
                "password needs at least 8 characters".into(),
            ));
        }
        Some(p) => Some(hash_password_blocking(p).await?),
        None => None,
    };
    let user = platform
        .shared
        .store
        .update_user(&name, hash.as_deref(), upd.role)
        .await?;
    // A new role applies at once (sessions read it on every request); a new
    // password logs the user's browsers out.
    if new_password {
        platform.shared.sessions.end_user(&name).await?;
    }
    platform
        .audit(
            "admin.user.set",
            &caller.0.label(),
            &name,
            user.role.as_str(),
            "",
        )
        .await;
    Ok(Json(user).into_response())
}

/// `DELETE /api/v1/users/{name}`
pub(crate) async fn delete_user(
    State(platform): State<Platform>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    caller.require_admin()?;
    if name == caller.0.user {
        return Err(AppError::Conflict("you cannot delete yourself".into()));
    }
    // Ends the user's sessions first (deleting the user would too, by
    // cascade).
    platform.shared.sessions.end_user(&name).await?;
    platform.shared.store.delete_user(&name).await?;
    platform
        .audit("admin.user.delete", &caller.0.label(), &name, "", "")
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/appkeys`
pub(crate) async fn list_app_keys(
    State(platform): State<Platform>,
    caller: Caller,
) -> Result<Response, AppError> {
    caller.require_admin()?;
    Ok(Json(platform.shared.store.list_app_keys().await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
struct AppKeyRequest {
    name: String,
    user: Option<String>,
    expires_at: Option<i64>,
    #[serde(default)]
    allowed_addresses: Vec<String>,
    #[serde(default)]
    thing_patterns: Vec<String>,
}

/// `POST /api/v1/appkeys`: the key is in the answer, once.
pub(crate) async fn create_app_key(
    State(platform): State<Platform>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, AppError> {
    caller.require_admin()?;
    let req: AppKeyRequest = parse_json(&body)?;
    if req.name.trim().is_empty() {
        return Err(AppError::BadRequest("an app key needs a name".into()));
    }
    if let Some(bad) = req
        .allowed_addresses
        .iter()
        .find(|a| Cidr::parse(a).is_none())
    {
        return Err(AppError::BadRequest(format!(
            "`{bad}` is not an address or CIDR block"
        )));
    }
    let new = NewAppKey {
        name: req.name,
        user: req.user.unwrap_or_else(|| caller.0.user.clone()),
        expires_at: req.expires_at,
        allowed_addresses: req.allowed_addresses,
        thing_patterns: req.thing_patterns,
    };
    let key = secret::generate_app_key();
    let created = platform
        .shared
        .store
        .create_app_key(&new, &secret::hash_app_key(key.expose()))
        .await?;
    platform
        .audit(
            "admin.appkey.create",
            &caller.0.label(),
            &created.name,
            &created.user,
            "",
        )
        .await;
    let mut v = serde_json::to_value(&created).map_err(|e| AppError::Internal(e.to_string()))?;
    v["key"] = json!(key.expose());
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `POST /api/v1/appkeys/{name}/revoke`
pub(crate) async fn revoke_app_key(
    State(platform): State<Platform>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    caller.require_admin()?;
    platform.shared.store.revoke_app_key(&name).await?;
    platform
        .audit("admin.appkey.revoke", &caller.0.label(), &name, "", "")
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PATCH /api/v1/appkeys/{name}`: body `{"expires_at": <ms since the
/// epoch> | null}`; answers the key as listed.
pub(crate) async fn update_app_key(
    State(platform): State<Platform>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    caller.require_admin()?;
    let v: serde_json::Value = parse_json(&body)?;
    let expires_at = parse_expiry(&v, now_ms())?;
    let key = platform
        .shared
        .store
        .set_app_key_expiry(&name, expires_at)
        .await?;
    let detail = match expires_at {
        Some(t) => format!("expires_at={t}"),
        None => "expires_at=never".to_owned(),
    };
    platform
        .audit("appkey.updated", &caller.0.label(), &name, &detail, "")
        .await;
    Ok(Json(key).into_response())
}

/// The `expires_at` (or `expiresAt`, as in creation) of an app-key update:
/// an integer in the future, or null.
fn parse_expiry(v: &serde_json::Value, now: i64) -> Result<Option<i64>, AppError> {
    let bad = |m: &str| Err(AppError::BadRequest(m.to_owned()));
    let Some(obj) = v.as_object() else {
        return bad("expected a JSON object {\"expires_at\": <ms since the epoch> | null}");
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "expires_at" | "expiresAt"))
    {
        return Err(AppError::BadRequest(format!(
            "unknown field `{k}`; only `expires_at` can be changed"
        )));
    }
    let value = match (obj.get("expires_at"), obj.get("expiresAt")) {
        (Some(_), Some(_)) => return bad("give `expires_at` once"),
        (Some(v), None) | (None, Some(v)) => v,
        (None, None) => {
            return bad("`expires_at` is required (ms since the epoch, or null for never)");
        }
    };
    match value {
        serde_json::Value::Null => Ok(None),
        t => match t.as_i64() {
            Some(t) if t <= now => bad("`expires_at` is in the past"),
            Some(t) => Ok(Some(t)),
            None => bad("`expires_at` must be an integer (ms since the epoch) or null"),
        },
    }
}

/// `DELETE /api/v1/appkeys/{name}`
pub(crate) async fn delete_app_key(
    State(platform): State<Platform>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    caller.require_admin()?;
    platform.shared.store.delete_app_key(&name).await?;
    platform
        .audit("admin.appkey.delete", &caller.0.label(), &name, "", "")
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/things`
pub(crate) async fn list_things(
    State(platform): State<Platform>,
    _caller: Caller,
) -> Result<Response, AppError> {
    Ok(Json(platform.shared.store.list_things().await?).into_response())
}

/// `POST /api/v1/things`
pub(crate) async fn create_thing(
    State(platform): State<Platform>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, AppError> {
    caller.require_admin()?;
    let mut new: NewThing = parse_json(&body)?;
    if new.name.trim().is_empty() || new.name.starts_with('*') || new.name.contains('/') {
        return Err(AppError::BadRequest(
            "a thing name must be non-empty, without `/` or a leading `*`".into(),
        ));
    }
    new.identifier = new
        .identifier
        .map(|i| i.trim_start_matches('*').to_owned())
        .filter(|i| !i.is_empty());
    let thing = platform.shared.store.create_thing(&new).await?;
    platform
        .audit(
            "admin.thing.add",
            &caller.0.label(),
            &thing.name,
            thing.template.as_str(),
            "",
        )
        .await;
    Ok((StatusCode::CREATED, Json(thing)).into_response())
}

/// `GET /api/v1/things/{name}`: the thing with its stored properties and interfaces.
pub(crate) async fn get_thing(
    State(platform): State<Platform>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let thing = platform
        .shared
        .store
        .thing(&name)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("thing `{name}` not found")))?;
    let properties = platform.shared.store.properties(&name).await?;
    let interfaces = platform.shared.store.interfaces(&name).await?;
    let mut v = serde_json::to_value(&thing).map_err(|e| AppError::Internal(e.to_string()))?;
    v["properties"] = json!(properties);
    v["interfaces"] = json!(interfaces);
    Ok(Json(v).into_response())
}

/// `DELETE /api/v1/things/{name}`
pub(crate) async fn delete_thing(
    State(platform): State<Platform>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    caller.require_admin()?;
    if platform.shared.registry.binding(&name).is_some() {
        return Err(AppError::Conflict(format!(
            "thing `{name}` is bound by an edge; disconnect it first"
        )));
    }
    platform.shared.store.delete_thing(&name).await?;
    platform
        .audit("admin.thing.delete", &caller.0.label(), &name, "", "")
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/things/{name}/interfaces`
pub(crate) async fn list_interfaces(
    State(platform): State<Platform>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    Ok(Json(platform.shared.store.interfaces(&name).await?).into_response())
}

/// `POST /api/v1/things/{name}/interfaces`: add or replace.
pub(crate) async fn put_interface(
    State(platform): State<Platform>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    caller.require_admin()?;
    let iface: RemoteInterface = parse_json(&body)?;
    if iface.name.trim().is_empty() || iface.host.trim().is_empty() || iface.port == 0 {
        return Err(AppError::BadRequest(
            "an interface needs a name, a host and a non-zero port".into(),
        ));
    }
    platform.shared.store.put_interface(&name, &iface).await?;
    platform
        .audit(
            "admin.interface.add",
            &caller.0.label(),
            &name,
            &iface.name,
            "",
        )
        .await;
    Ok((StatusCode::CREATED, Json(iface)).into_response())
}

/// `DELETE /api/v1/things/{name}/interfaces/{iface}`
pub(crate) async fn delete_interface(
    State(platform): State<Platform>,
    caller: Caller,
    Path((name, iface)): Path<(String, String)>,
) -> Result<Response, AppError> {
    caller.require_admin()?;
    platform
        .shared
        .store
        .delete_interface(&name, &iface)
        .await?;
    platform
        .audit(
            "admin.interface.delete",
            &caller.0.label(),
            &name,
            &iface,
            "",
        )
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Default and largest `limit` of `GET /api/v1/audit`.
const AUDIT_DEFAULT_LIMIT: i64 = 100;
const AUDIT_MAX_LIMIT: i64 = 10_000;
/// Default and largest `limit` of `GET /api/v1/sessions/history`.
const HISTORY_DEFAULT_LIMIT: i64 = 50;
const HISTORY_MAX_LIMIT: i64 = 1000;
/// Longest accepted text parameter.
const MAX_PARAM_LEN: usize = 256;

/// Query parameters, checked one by one: every error names its parameter.
struct Params(std::collections::HashMap<String, String>);

impl Params {
    fn new(raw: Vec<(String, String)>, known: &[&str]) -> Result<Params, AppError> {
        let mut map = std::collections::HashMap::new();
        for (k, v) in raw {
            if !known.contains(&k.as_str()) {
                return Err(AppError::BadRequest(format!(
                    "unknown parameter `{k}` (known: {})",
                    known.join(", ")
                )));
            }
            if v.len() > MAX_PARAM_LEN {
                return Err(AppError::BadRequest(format!(
                    "parameter `{k}` is longer than {MAX_PARAM_LEN} bytes"
                )));
            }
            if map.insert(k.clone(), v).is_some() {
                return Err(AppError::BadRequest(format!("parameter `{k}` given twice")));
            }
        }
        Ok(Params(map))
    }

    /// A non-empty text value.
    fn text(&self, key: &str) -> Result<Option<String>, AppError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(v) if v.is_empty() => {
                Err(AppError::BadRequest(format!("parameter `{key}` is empty")))
            }
            Some(v) => Ok(Some(v.clone())),
        }
    }

    /// An integer in `min..=max`.
    fn int(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, AppError> {
        let Some(v) = self.0.get(key) else {
            return Ok(None);
        };
        match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(AppError::BadRequest(format!(
                "parameter `{key}`: `{v}` is not an integer in {min}..={max}"
            ))),
        }
    }
}

/// `GET /api/v1/audit?limit=&offset=&kind=&actor=&subject=&since=&until=&q=`
/// (administrators): newest first. `kind` ending in `*` is a prefix; `since`
/// (inclusive) and `until` (exclusive) are ms since the epoch; `q` is a
/// substring of kind, actor, subject or detail.
pub(crate) async fn audit(
    State(platform): State<Platform>,
    caller: Caller,
    Query(raw): Query<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    caller.require_admin()?;
    let p = Params::new(
        raw,
        &[
            "limit", "offset", "kind", "actor", "subject", "since", "until", "q",
        ],
    )?;
    let mut f = AuditFilter::newest(
        p.int("limit", 1, AUDIT_MAX_LIMIT)?
            .unwrap_or(AUDIT_DEFAULT_LIMIT),
    );
    f.offset = p.int("offset", 0, i64::MAX)?.unwrap_or(0);
    if let Some(kind) = p.text("kind")? {
        match kind.strip_suffix('*') {
            Some(prefix) if !prefix.contains('*') => f.kind_prefix = Some(prefix.to_owned()),
            None if !kind.contains('*') => f.kind = Some(kind),
            _ => {
                return Err(AppError::BadRequest(
                    "parameter `kind`: `*` is allowed only at the end (a prefix)".into(),
                ));
            }
        }
    }
    f.actor = p.text("actor")?;
    f.subject = p.text("subject")?;
    f.since = p.int("since", 0, i64::MAX)?;
    f.until = p.int("until", 0, i64::MAX)?;
    if let (Some(s), Some(u)) = (f.since, f.until)
        && s > u
    {
        return Err(AppError::BadRequest(
            "parameter `until` is before `since`".into(),
        ));
    }
    f.text = p.text("q")?;
    Ok(Json(platform.shared.store.audit_query(&f).await?).into_response())
}

/// `GET /api/v1/sessions/history?limit=&thing=&user=`: ended remote-access
/// sessions, newest first, from the audit log's `session.ended` entries
/// (each the JSON of a `broker::SessionRecord`). Operators see their own,
/// administrators everyone's (or `user`'s); viewers none.
pub(crate) async fn session_history(
    State(platform): State<Platform>,
    caller: Caller,
    Query(raw): Query<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    caller.require_operator()?;
    let p = Params::new(raw, &["limit", "thing", "user"])?;
    let limit = p
        .int("limit", 1, HISTORY_MAX_LIMIT)?
        .unwrap_or(HISTORY_DEFAULT_LIMIT);
    let thing = p.text("thing")?;
    let user = p.text("user")?;
    let user = if caller.0.role.may_administer() {
        user
    } else {
        match user {
            Some(u) if u != caller.0.user => {
                return Err(AppError::Forbidden(format!(
                    "role {} sees only its own sessions",
                    caller.0.role
                )));
            }
            _ => Some(caller.0.user.clone()),
        }
    };
    let mut f = AuditFilter::newest(limit);
    f.kind = Some("session.ended".into());
    f.actor = user;
    // the subject is `thing/interface`; thing names have no `/`
    f.subject_prefix = thing.as_ref().map(|t| format!("{t}/"));
    let entries = platform.shared.store.audit_query(&f).await?;
    let records: Vec<serde_json::Value> = entries
        .iter()
        .filter_map(
            |e| match serde_json::from_str::<serde_json::Value>(&e.detail) {
                Ok(v) if v.is_object() => Some(v),
                _ => {
                    tracing::warn!(
                        id = e.id,
                        "session.ended audit entry without a session record"
                    );
                    None
                }
            },
        )
        .filter(|v| thing.as_ref().is_none_or(|t| v["thing"] == t.as_str()))
        .collect();
    Ok(Json(records).into_response())
}
