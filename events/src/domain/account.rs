use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Roles, most powerful first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Superadmin,
    Admin,
    Manager,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Superadmin => "superadmin",
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::User => "user",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw.to_ascii_lowercase().as_str() {
            "superadmin" => Some(Role::Superadmin),
            "admin" => Some(Role::Admin),
            "manager" => Some(Role::Manager),
            "user" => Some(Role::User),
            _ => None,
        }
    }

    /// Admins and superadmins.
    pub fn is_admin(self) -> bool {
        self <= Role::Admin
    }

    /// Managers and above.
    pub fn is_manager(self) -> bool {
        self <= Role::Manager
    }
}

/// Everything known about a person at registration, whichever door they came through.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountProfile {
    pub email: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub full_name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    /// yyyymmdd
    #[serde(default)]
    pub birthdate: Option<String>,
    /// M|F|N|P
    #[serde(default)]
    pub gender: Option<String>,
    /// E (email) | S (social)
    #[serde(default)]
    pub register_type: Option<String>,
    #[serde(default)]
    pub national_code: Option<String>,
    /// The KooDTX device id given at its register door.
    #[serde(default)]
    pub device_id: Option<String>,
    #[serde(default)]
    pub is_push_agree: bool,
    #[serde(default)]
    pub is_marketing_agree: bool,
    /// Keyed hash of the e-mail, written by the log when it seals the profile (ADR 0009);
    /// decisions leave it empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_key: Option<String>,
}

/// A partial profile edit: only the fields that are `Some` change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    /// Seed 002 lets a profile edit set the phone without SMS verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Keyed hash of a new e-mail, written by the log when it seals the change (ADR 0009).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_key: Option<String>,
}

impl ProfileChanges {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The three device notification flags of seed 001.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationSettings {
    pub is_device_muted: bool,
    pub is_device_alim_talk_enabled: bool,
    pub is_basestation_alert_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum AccountEvent {
    AccountRegistered {
        account_id: i64,
        role: Role,
        password_hash: String,
        profile: AccountProfile,
        registered_at: DateTime<Utc>,
    },
    ProfileChanged {
        account_id: i64,
        changes: ProfileChanges,
        changed_at: DateTime<Utc>,
    },
    PasswordChanged {
        account_id: i64,
        password_hash: String,
        changed_at: DateTime<Utc>,
    },
    RoleChanged {
        account_id: i64,
        role: Role,
        changed_at: DateTime<Utc>,
    },
    AccountActivated {
        account_id: i64,
        activated_at: DateTime<Utc>,
    },
    AccountDeactivated {
        account_id: i64,
        deactivated_at: DateTime<Utc>,
    },
    /// Soft delete by an administrator (seed 002 `DELETE /users/{id}`).
    AccountDeleted {
        account_id: i64,
        deleted_at: DateTime<Utc>,
    },
    /// Consent change; a consent that turns true gets its agree date.
    PolicyChanged {
        account_id: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_push_agree: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_marketing_agree: Option<bool>,
        changed_at: DateTime<Utc>,
    },
    NotificationSettingsChanged {
        account_id: i64,
        settings: NotificationSettings,
        changed_at: DateTime<Utc>,
    },
    PushTokenSet {
        account_id: i64,
        push_token: String,
        set_at: DateTime<Utc>,
    },
    /// A phone number proven by SMS.
    PhoneChanged {
        account_id: i64,
        phone: String,
        changed_at: DateTime<Utc>,
    },
    /// The person left (seed 001 `DELETE root-user`).
    AccountWithdrawn {
        account_id: i64,
        withdrawn_at: DateTime<Utc>,
    },
}

crate::domain_event!(
    AccountEvent,
    "account",
    [
        AccountRegistered,
        ProfileChanged,
        PasswordChanged,
        RoleChanged,
        AccountActivated,
        AccountDeactivated,
        AccountDeleted,
        PolicyChanged,
        NotificationSettingsChanged,
        PushTokenSet,
        PhoneChanged,
        AccountWithdrawn
    ]
);
