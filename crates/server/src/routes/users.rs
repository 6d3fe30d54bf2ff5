//! Staff identities: sign-in and sessions (any person), users (`users_admin`) and roles
//! (`roles_admin`). The rules live in `access` (`UserStore`, `Roles`); these handlers translate.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use access::{AccessError, CreatedUser, Enrolment, NewSession, RoleView, SessionView, SignIn, UserView};

use crate::auth::{Caller, ClientIp, SESSION_COOKIE};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::AppState;

// ---------------------------------------------------------------- sessions

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    pub username: String,
    pub password: String,
    /// The 6-digit code of the authenticator app. Omitted at the first sign-in: the answer
    /// then carries the secret to enrol; the next sign-in with its first code confirms it.
    #[serde(default)]
    pub totp: Option<String>,
    /// A one-time recovery code instead of `totp`.
    #[serde(default)]
    pub recovery_code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SignInAnswer {
    /// `signed_in` (201, with `session`) or `enrolment_required` (200, with `enrolment`).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<NewSession>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrolment: Option<Enrolment>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

fn cookie(value: &str, max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={max_age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

#[utoipa::path(post, path = "/v1/sessions", tag = "security", request_body = SignInRequest,
    responses(
        (status = 201, description = "Signed in: the token (also set as an HttpOnly, Secure, SameSite=Strict cookie)", body = SignInAnswer),
        (status = 200, description = "Password right, no second factor yet: enrol with the secret shown once, then sign in with its first code", body = SignInAnswer),
        (status = 401, description = "invalid_credentials: unknown user, wrong password, wrong or missing code (one answer for all)", body = ErrorBody),
        (status = 423, description = "user_locked: too many failed sign-ins; an admin unlocks", body = ErrorBody),
        (status = 429, description = "too_many_attempts: too many failures from this address", body = ErrorBody),
    ))]
pub async fn sign_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<SignInRequest>,
) -> Result<Response, ApiError> {
    let credentials = access::Credentials {
        username: &request.username,
        password: &request.password,
        totp: request.totp.as_deref(),
        recovery_code: request.recovery_code.as_deref(),
    };
    match state.users.sign_in(credentials, ip).await? {
        SignIn::Session(session) => {
            let max_age = state.users.settings().session_max.as_secs();
            let set_cookie = cookie(&session.token, max_age);
            let answer = SignInAnswer { status: "signed_in".into(), session: Some(session), enrolment: None };
            Ok((StatusCode::CREATED, [(header::SET_COOKIE, set_cookie)], Json(answer)).into_response())
        }
        SignIn::EnrolmentRequired(enrolment) => {
            let answer =
                SignInAnswer { status: "enrolment_required".into(), session: None, enrolment: Some(enrolment) };
            Ok((StatusCode::OK, Json(answer)).into_response())
        }
    }
}

#[utoipa::path(get, path = "/v1/sessions", tag = "security",
    responses((status = 200, description = "The caller's live sessions (none for an API key)", body = SessionList)),
    security(("api_key" = [])))]
pub async fn list_sessions(State(state): State<AppState>, caller: Caller) -> Result<Json<SessionList>, ApiError> {
    let sessions = match caller.kind {
        access::CallerKind::User => state.users.sessions(caller.key_id, caller.session_id).await?,
        access::CallerKind::Key => Vec::new(),
    };
    Ok(Json(SessionList { sessions }))
}

#[utoipa::path(delete, path = "/v1/sessions/current", tag = "security",
    responses((status = 204, description = "Signed out; the cookie is cleared"),
        (status = 400, description = "not_a_session: the caller used an API key", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn sign_out(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let Some(session) = caller.session_id else {
        return Err(ApiError::bad_request("not_a_session", "the caller is an API key, not a session"));
    };
    state.users.end_session(session).await?;
    tracing::info!(user_id = %caller.key_id, session_id = %session, "signed out");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie("", 0))]).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    /// At least 12 characters, different from the current one.
    pub new_password: String,
}

#[utoipa::path(post, path = "/v1/sessions/current/password", tag = "security", request_body = PasswordChange,
    responses((status = 204, description = "Changed; the user's other sessions ended"),
        (status = 400, description = "not_a_session: the caller used an API key", body = ErrorBody),
        (status = 401, description = "invalid_credentials: the current password is wrong", body = ErrorBody),
        (status = 422, description = "invalid_request: the new password is too short or unchanged", body = ErrorBody),
        (status = 429, description = "too_many_attempts", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiJson(r): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let Some(session) = caller.session_id else {
        return Err(ApiError::bad_request("not_a_session", "the caller is an API key, not a session"));
    };
    state.users.change_password(caller.key_id, session, &r.current_password, &r.new_password, ip).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- users

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 1..=64 of a-z, 0-9, '.', '_', '-' (stored lower-case).
    pub username: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// The role's name; omitted = no role (least privilege).
    #[serde(default)]
    pub role: Option<String>,
    /// At least 12 characters; omitted = one is generated and answered once.
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// A role's name; "" removes the role.
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

#[utoipa::path(post, path = "/v1/users", tag = "security", request_body = NewUser,
    responses((status = 201, description = "Created; the initial password is shown once when generated", body = CreatedUser),
        (status = 409, description = "username_taken", body = ErrorBody),
        (status = 422, description = "invalid_request, unknown_role", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    let created =
        state.users.create(&r.username, r.display_name.as_deref(), r.role.as_deref(), r.password.as_deref()).await?;
    tracing::info!(user_id = %created.user.id, role = ?created.user.role, by = %caller.key_id, "user created");
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/v1/users", tag = "security",
    responses((status = 200, description = "Every user", body = UserList)), security(("api_key" = [])))]
pub async fn list_users(State(state): State<AppState>) -> Result<Json<UserList>, ApiError> {
    Ok(Json(UserList { users: state.users.list().await? }))
}

#[utoipa::path(get, path = "/v1/users/{id}", tag = "security", params(("id" = Uuid, Path)),
    responses((status = 200, body = UserView), (status = 404, description = "user_not_found", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_user(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> Result<Json<UserView>, ApiError> {
    Ok(Json(state.users.get(id).await?))
}

#[utoipa::path(patch, path = "/v1/users/{id}", tag = "security", params(("id" = Uuid, Path)), request_body = UserChange,
    responses((status = 200, body = UserView), (status = 404, description = "user_not_found", body = ErrorBody),
        (status = 422, description = "invalid_request, unknown_role", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(r): ApiJson<UserChange>,
) -> Result<Json<UserView>, ApiError> {
    let user = state.users.update(id, r.role.as_deref().map(Some), r.display_name.as_deref()).await?;
    tracing::info!(user_id = %id, role = ?user.role, by = %caller.key_id, "user changed");
    Ok(Json(user))
}

macro_rules! user_action {
    ($name:ident, $path:literal, $what:literal, |$users:ident, $id:ident| $call:expr) => {
        #[utoipa::path(post, path = $path, tag = "security", params(("id" = Uuid, Path)),
            responses((status = 200, description = $what, body = UserView),
                (status = 404, description = "user_not_found", body = ErrorBody)),
            security(("api_key" = [])))]
        pub async fn $name(
            State(state): State<AppState>,
            caller: Caller,
            ApiPath($id): ApiPath<Uuid>,
        ) -> Result<Json<UserView>, ApiError> {
            let $users = &state.users;
            let user = $call.await?;
            tracing::info!(user_id = %$id, by = %caller.key_id, action = stringify!($name), "user administration");
            Ok(Json(user))
        }
    };
}

user_action!(unlock_user, "/v1/users/{id}/unlock", "Unlocked; failure count cleared", |users, id| users.unlock(id));
user_action!(disable_user, "/v1/users/{id}/disable", "Disabled; every session ended at once", |users, id| users
    .set_disabled(id, true));
user_action!(enable_user, "/v1/users/{id}/enable", "Enabled again", |users, id| users.set_disabled(id, false));
user_action!(
    reset_totp,
    "/v1/users/{id}/reset-totp",
    "Second factor and recovery codes forgotten, sessions ended; the next sign-in enrols again",
    |users, id| users.reset_totp(id)
);

// ---------------------------------------------------------------- roles

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    /// 1..=50 of a-z, 0-9, '_', '-', starting with a letter.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Permission names (see `Permission`); an unknown one is 422 `unknown_permission`.
    pub permissions: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    #[serde(default)]
    pub description: Option<String>,
    /// The role's whole new permission set.
    pub permissions: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RoleList {
    pub roles: Vec<RoleView>,
}

/// An unknown role named in the path is 404.
fn role_path_error(e: AccessError) -> ApiError {
    match e {
        AccessError::UnknownRole(_) => ApiError::new(StatusCode::NOT_FOUND, "role_not_found", e.to_string()),
        e => e.into(),
    }
}

fn check_description(d: Option<&str>) -> Result<(), ApiError> {
    if d.is_some_and(|d| d.len() > 500) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", "description over 500 bytes"));
    }
    Ok(())
}

#[utoipa::path(get, path = "/v1/roles", tag = "security",
    responses((status = 200, description = "Every role with its permissions", body = RoleList)), security(("api_key" = [])))]
pub async fn list_roles(State(state): State<AppState>) -> Result<Json<RoleList>, ApiError> {
    Ok(Json(RoleList { roles: state.roles.list().await? }))
}

#[utoipa::path(get, path = "/v1/roles/{name}", tag = "security", params(("name" = String, Path)),
    responses((status = 200, body = RoleView), (status = 404, description = "role_not_found", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_role(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<RoleView>, ApiError> {
    Ok(Json(state.roles.get(&name).await.map_err(role_path_error)?))
}

#[utoipa::path(post, path = "/v1/roles", tag = "security", request_body = NewRole,
    responses((status = 201, body = RoleView), (status = 409, description = "role_exists", body = ErrorBody),
        (status = 422, description = "invalid_request, unknown_permission", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<NewRole>,
) -> Result<(StatusCode, Json<RoleView>), ApiError> {
    check_description(r.description.as_deref())?;
    let role = state.roles.create(&r.name, r.description.as_deref().unwrap_or_default(), &r.permissions).await?;
    tracing::info!(role = %role.name, by = %caller.key_id, "role created");
    Ok((StatusCode::CREATED, Json(role)))
}

#[utoipa::path(put, path = "/v1/roles/{name}", tag = "security", params(("name" = String, Path)), request_body = RoleChange,
    responses((status = 200, description = "Changed; keys and sessions with the role follow within seconds", body = RoleView),
        (status = 404, description = "role_not_found", body = ErrorBody),
        (status = 409, description = "builtin_role: admin cannot be changed", body = ErrorBody),
        (status = 422, description = "invalid_request, unknown_permission", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(r): ApiJson<RoleChange>,
) -> Result<Json<RoleView>, ApiError> {
    check_description(r.description.as_deref())?;
    let role = state.roles.update(&name, r.description.as_deref(), &r.permissions).await.map_err(role_path_error)?;
    tracing::info!(role = %role.name, by = %caller.key_id, "role changed");
    Ok(Json(role))
}

#[utoipa::path(delete, path = "/v1/roles/{name}", tag = "security", params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "role_not_found", body = ErrorBody),
        (status = 409, description = "builtin_role, role_in_use (a key or user has it)", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.roles.delete(&name).await.map_err(role_path_error)?;
    tracing::info!(role = %name, by = %caller.key_id, "role deleted");
    Ok(StatusCode::NO_CONTENT)
}
