//! The JSON management API under `/api/v1/`: login, users, app keys,
//! things and remote interfaces, audit. Administrators manage; every role
//! may read things.

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
use crate::model::{Cidr, NewAppKey, NewThing, RemoteInterface, Role};
use crate::secret;
use crate::state::Platform;

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
    let (token, csrf) = platform
        .shared
        .sessions
        .create(&principal.user, principal.role);
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
        platform.shared.sessions.remove(token);
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

#[derive(Deserialize)]
pub(crate) struct AuditQuery {
    limit: Option<i64>,
}

/// `GET /api/v1/audit?limit=N`
pub(crate) async fn audit(
    State(platform): State<Platform>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Response, AppError> {
    caller.require_admin()?;
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    Ok(Json(platform.shared.store.audit_log(limit).await?).into_response())
}
