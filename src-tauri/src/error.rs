//! The error every command returns to the window: `{ "code": "...", "message": "..." }`.
//! `code` is stable and meant for the UI's logic (and tests); `message` is meant for people.

use serde::Serialize;
use vigil_core::alarms::AlarmError;
use vigil_core::audit::AuditError;
use vigil_core::auth::AuthError;
use vigil_core::engine::EngineError;
use vigil_core::patients::PatientError;
use vigil_core::store::StoreError;
use vigil_core::telemetry::IdError;
use vigil_core::usecase::ActionError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// Bad input from the window (an unknown role name, a malformed filter).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new("bad_request", message)
    }

    /// Something failed inside the station; the message is logged, the window gets a summary.
    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %message, "command failed");
        ApiError::new("internal", format!("internal error: {message}"))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        let code = match &e {
            AuthError::InvalidCredentials => "invalid_credentials",
            AuthError::AccountLocked { .. } => "account_locked",
            AuthError::AccountDisabled => "account_disabled",
            AuthError::NoSession => "no_session",
            AuthError::SessionEnded => "session_ended",
            AuthError::SessionExpired => "session_expired",
            AuthError::Locked => "locked",
            AuthError::MustChangePassword => "must_change_password",
            AuthError::Forbidden { .. } | AuthError::WrongAuthorization { .. } => "forbidden",
            AuthError::Policy(_) => "password_policy",
            AuthError::InvalidUserName { .. } => "invalid_user_name",
            AuthError::UserExists(_) => "user_exists",
            AuthError::UnknownUser(_) => "unknown_user",
            AuthError::LastAdmin => "last_admin",
            AuthError::NotFirstRun => "not_first_run",
            AuthError::BreakGlassReason => "break_glass_reason",
            AuthError::BreakGlassNotNeeded(_) => "break_glass_not_needed",
            AuthError::BreakGlassActive { .. } => "break_glass_active",
            AuthError::Hash(_)
            | AuthError::CorruptUser(_)
            | AuthError::Audit(_)
            | AuthError::Sql(_)
            | AuthError::Store(_) => return ApiError::internal(e),
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            EngineError::Auth(a) => a.into(),
            EngineError::Alarm(a @ AlarmError::UnknownAlarm(_)) => {
                ApiError::new("unknown_alarm", a.to_string())
            }
            EngineError::Alarm(a @ AlarmError::InvalidLimit(_)) => {
                ApiError::new("invalid_limit", a.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> ApiError {
        ApiError::internal(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::internal(e)
    }
}

impl From<IdError> for ApiError {
    fn from(e: IdError) -> ApiError {
        ApiError::bad_request(e.to_string())
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> ApiError {
        match e {
            ActionError::Auth(a) => a.into(),
            ActionError::UnknownDevice(_) => ApiError::new("unknown_device", e.to_string()),
            ActionError::Invalid(m) => ApiError::bad_request(m),
            ActionError::Patient(p) => p.into(),
            ActionError::Engine(g) => g.into(),
            ActionError::Audit(_)
            | ActionError::Store(_)
            | ActionError::Limits(_)
            | ActionError::ConfigFile(_)
            | ActionError::Unreachable(_) => ApiError::internal(e),
        }
    }
}

impl From<PatientError> for ApiError {
    fn from(e: PatientError) -> ApiError {
        match e {
            PatientError::Auth(a) => a.into(),
            PatientError::Invalid(m) => ApiError::bad_request(m),
            e @ PatientError::BedOccupied(_) => ApiError::new("bed_occupied", e.to_string()),
            e @ PatientError::NoPatient(_) => ApiError::new("no_patient", e.to_string()),
            e @ PatientError::MrnInUse(..) => ApiError::new("mrn_in_use", e.to_string()),
            e @ (PatientError::Sql(_) | PatientError::Audit(_)) => ApiError::internal(e),
        }
    }
}

impl From<vigil_core::report::ReportError> for ApiError {
    fn from(e: vigil_core::report::ReportError) -> ApiError {
        use vigil_core::report::ReportError as R;
        match e {
            R::Auth(a) => a.into(),
            R::Invalid(m) => ApiError::bad_request(m),
            e @ R::UnknownAlarm { .. } => ApiError::new("unknown_alarm", e.to_string()),
            e => ApiError::internal(e),
        }
    }
}

impl From<vigil_core::remote::RemoteError> for ApiError {
    fn from(e: vigil_core::remote::RemoteError) -> ApiError {
        use vigil_core::remote::RemoteError as R;
        match e {
            R::Auth(a) => a.into(),
            R::Invalid(m) => ApiError::bad_request(m),
            e @ (R::TimeZone(_) | R::Plan(_)) => ApiError::bad_request(e.to_string()),
            e @ R::NoPatient(_) => ApiError::new("no_patient", e.to_string()),
            e @ (R::BedOccupied(_)
            | R::WardBed(_)
            | R::BedOfAnother(_)
            | R::MrnEnrolled(..)
            | R::AlreadyPaused(_)
            | R::NotPaused(_)
            | R::Unchanged(..)) => ApiError::new("conflict", e.to_string()),
            e @ (R::StoredPlan { .. } | R::Sql(_) | R::Store(_) | R::Audit(_)) => {
                ApiError::internal(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::auth::{Permission, Role};

    #[test]
    fn serialises_as_code_and_message() {
        let v = serde_json::to_value(ApiError::from(AuthError::Locked)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "code": "locked",
                "message": "session locked; unlock with your password",
            })
        );
        let v = serde_json::to_value(ApiError::from(AuthError::Forbidden {
            role: Role::Nurse,
            permission: Permission::ManageUsers,
        }))
        .unwrap();
        assert_eq!(v["code"], "forbidden");
        assert_eq!(v["message"], "role nurse may not manage_users");
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), 2, "exactly code and message: {v}");
    }

    #[test]
    fn internal_errors_have_a_generic_code() {
        let e = ApiError::from(AuthError::Hash("boom".into()));
        assert_eq!(e.code, "internal");
        assert!(e.message.contains("boom"));
    }
}
