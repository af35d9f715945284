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
}

crate::domain_event!(AccountEvent, "account", [AccountRegistered]);
