//! Pure decisions and state of the account aggregate.

use crate::es::Aggregate;
use chrono::{DateTime, Utc};
use fleetstream_events::{
    AccountEvent, AccountProfile, NotificationSettings, ProfileChanges, Role,
};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Account {
    pub id: Option<i64>,
    pub role: Option<Role>,
    pub email: String,
    pub is_active: bool,
    pub is_push_agree: bool,
    pub is_marketing_agree: bool,
    pub phone: Option<String>,
    /// Every number the account has held: their SMS are its personal data too.
    pub phones: Vec<String>,
    pub deleted: bool,
    pub withdrawn: bool,
}

impl Account {
    /// Registered and neither deleted nor withdrawn.
    pub fn exists(&self) -> bool {
        self.id.is_some() && !self.deleted && !self.withdrawn
    }
}

impl Account {
    fn set_phone(&mut self, phone: Option<&String>) {
        let Some(phone) = phone else { return };
        if !self.phones.contains(phone) {
            self.phones.push(phone.clone());
        }
        self.phone = Some(phone.clone());
    }
}

impl Aggregate for Account {
    type Event = AccountEvent;

    fn evolve(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::AccountRegistered {
                account_id,
                role,
                profile,
                ..
            } => {
                self.id = Some(*account_id);
                self.role = Some(*role);
                self.email = profile.email.clone();
                self.is_active = true;
                self.is_push_agree = profile.is_push_agree;
                self.is_marketing_agree = profile.is_marketing_agree;
                self.set_phone(profile.phone.as_ref());
            }
            AccountEvent::ProfileChanged { changes, .. } => {
                if let Some(email) = &changes.email {
                    self.email = email.clone();
                }
                self.set_phone(changes.phone.as_ref());
            }
            AccountEvent::PasswordChanged { .. }
            | AccountEvent::NotificationSettingsChanged { .. }
            | AccountEvent::PushTokenSet { .. } => {}
            AccountEvent::RoleChanged { role, .. } => self.role = Some(*role),
            AccountEvent::AccountActivated { .. } => self.is_active = true,
            AccountEvent::AccountDeactivated { .. } => self.is_active = false,
            AccountEvent::AccountDeleted { .. } => self.deleted = true,
            AccountEvent::PolicyChanged {
                is_push_agree,
                is_marketing_agree,
                ..
            } => {
                if let Some(v) = is_push_agree {
                    self.is_push_agree = *v;
                }
                if let Some(v) = is_marketing_agree {
                    self.is_marketing_agree = *v;
                }
            }
            AccountEvent::PhoneChanged { phone, .. } => self.set_phone(Some(phone)),
            AccountEvent::AccountWithdrawn { .. } => self.withdrawn = true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountError {
    AlreadyRegistered,
    InvalidEmail,
    NotFound,
    /// Deleted or withdrawn.
    Gone,
    PasswordTooShort,
    InvalidGender,
    InvalidBirthdate,
    PushNotAgreed,
    InvalidPushToken,
}

#[derive(Debug, Clone)]
pub struct RegisterAccount {
    pub account_id: i64,
    pub role: Role,
    pub password_hash: String,
    pub profile: AccountProfile,
    pub now: DateTime<Utc>,
}

pub fn decide_register(
    state: &Account,
    cmd: RegisterAccount,
) -> Result<Vec<AccountEvent>, AccountError> {
    if state.id.is_some() {
        return Err(AccountError::AlreadyRegistered);
    }
    let email = cmd.profile.email.trim().to_owned();
    if !is_plausible_email(&email) {
        return Err(AccountError::InvalidEmail);
    }
    let mut profile = cmd.profile;
    profile.email = email;
    // Every door signs up with an email and a password (seed 001 `"E"`); a social sign-up
    // would send `"S"` itself.
    profile.register_type.get_or_insert_with(|| "E".to_owned());
    validate_person(profile.birthdate.as_deref(), profile.gender.as_deref())?;
    Ok(vec![AccountEvent::AccountRegistered {
        account_id: cmd.account_id,
        role: cmd.role,
        password_hash: cmd.password_hash,
        profile,
        registered_at: cmd.now,
    }])
}

fn live(state: &Account) -> Result<i64, AccountError> {
    match state.id {
        None => Err(AccountError::NotFound),
        Some(_) if state.deleted || state.withdrawn => Err(AccountError::Gone),
        Some(id) => Ok(id),
    }
}

/// birthdate is yyyymmdd, gender one of M|F|N|P (seed 001).
fn validate_person(birthdate: Option<&str>, gender: Option<&str>) -> Result<(), AccountError> {
    if let Some(b) = birthdate {
        if chrono::NaiveDate::parse_from_str(b, "%Y%m%d").is_err() || b.len() != 8 {
            return Err(AccountError::InvalidBirthdate);
        }
    }
    if let Some(g) = gender {
        if !["M", "F", "N", "P"].contains(&g) {
            return Err(AccountError::InvalidGender);
        }
    }
    Ok(())
}

/// Edits the profile; an edit that changes nothing emits nothing.
pub fn decide_change_profile(
    state: &Account,
    mut changes: ProfileChanges,
    now: DateTime<Utc>,
) -> Result<Vec<AccountEvent>, AccountError> {
    let account_id = live(state)?;
    if let Some(email) = &changes.email {
        let email = email.trim().to_owned();
        if !is_plausible_email(&email) {
            return Err(AccountError::InvalidEmail);
        }
        changes.email = Some(email);
    }
    validate_person(changes.birthdate.as_deref(), changes.gender.as_deref())?;
    if changes.is_empty() {
        return Ok(vec![]);
    }
    Ok(vec![AccountEvent::ProfileChanged {
        account_id,
        changes,
        changed_at: now,
    }])
}

/// `password_hash` is computed by the caller (hashing is not pure); the length check needs the
/// clear length.
pub fn decide_change_password(
    state: &Account,
    password_len: usize,
    password_hash: String,
    now: DateTime<Utc>,
) -> Result<Vec<AccountEvent>, AccountError> {
    let account_id = live(state)?;
    if password_len < crate::auth::password::MIN_PASSWORD_LEN {
        return Err(AccountError::PasswordTooShort);
    }
    Ok(vec![AccountEvent::PasswordChanged {
        account_id,
        password_hash,
        changed_at: now,
    }])
}

pub fn decide_change_role(
    state: &Account,
    role: Role,
    now: DateTime<Utc>,
) -> Result<Vec<AccountEvent>, AccountError> {
    let account_id = live(state)?;
    if state.role == Some(role) {
        return Ok(vec![]);
    }
    Ok(vec![AccountEvent::RoleChanged {
        account_id,
        role,
        changed_at: now,
    }])
}

pub fn decide_set_active(
    state: &Account,
    active: bool,
    now: DateTime<Utc>,
) -> Result<Vec<AccountEvent>, AccountError> {
    let account_id = live(state)?;
    Ok(match (state.is_active, active) {
        (false, true) => vec![AccountEvent::AccountActivated {
            account_id,
            activated_at: now,
        }],
        (true, false) => vec![AccountEvent::AccountDeactivated {
            account_id,
            deactivated_at: now,
        }],
        _ => vec![],
    })
}

pub fn decide_delete(
    state: &Account,
    now: DateTime<Utc>,
) -> Result<Vec<AccountEvent>, AccountError> {
    let account_id = live(state)?;
    Ok(vec![AccountEvent::AccountDeleted {
        account_id,
        deleted_at: now,
    }])
}

pub fn decide_withdraw(
    state: &Account,
    now: DateTime<Utc>,
) -> Result<Vec<AccountEvent>, AccountError> {
    let account_id = live(state)?;
    Ok(vec![AccountEvent::AccountWithdrawn {
        account_id,
        withdrawn_at: now,
    }])
}

/// Records consent; always emits so the agree dates of a re-affirmed consent are kept as sent.
pub fn decide_change_policy(
    state: &Account,
    is_push_agree: Option<bool>,
    is_marketing_agree: Option<bool>,
    now: DateTime<Utc>,
) -> Result<Vec<AccountEvent>, AccountError> {
    let account_id = live(state)?;
    if is_push_agree.is_none() && is_marketing_agree.is_none() {
        return Ok(vec![]);
    }
    Ok(vec![AccountEvent::PolicyChanged {
        account_id,
        is_push_agree,
        is_marketing_agree,
        changed_at: now,
    }])
}

pub fn decide_change_notifications(
    state: &Account,
    settings: NotificationSettings,
    now: DateTime<Utc>,
) -> Result<Vec<AccountEvent>, AccountError> {
    let account_id = live(state)?;
    Ok(vec![AccountEvent::NotificationSettingsChanged {
        account_id,
        settings,
        changed_at: now,
    }])
}

/// A push token needs push consent and must look like an FCM/APNs token.
pub fn decide_set_push_token(
    state: &Account,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Vec<AccountEvent>, AccountError> {
    let account_id = live(state)?;
    if !state.is_push_agree {
        return Err(AccountError::PushNotAgreed);
    }
    let token = token.trim();
    let well_formed = token.len() >= 16
        && token.len() <= 4096
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c));
    if !well_formed {
        return Err(AccountError::InvalidPushToken);
    }
    Ok(vec![AccountEvent::PushTokenSet {
        account_id,
        push_token: token.to_owned(),
        set_at: now,
    }])
}

/// The phone was proven by SMS before this is called.
pub fn decide_change_phone(
    state: &Account,
    phone: &str,
    now: DateTime<Utc>,
) -> Result<Vec<AccountEvent>, AccountError> {
    let account_id = live(state)?;
    Ok(vec![AccountEvent::PhoneChanged {
        account_id,
        phone: phone.to_owned(),
        changed_at: now,
    }])
}

pub fn is_plausible_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::es::Aggregate;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 9, 0, 0).unwrap()
    }

    fn registered() -> Vec<AccountEvent> {
        decide_register(
            &Account::default(),
            RegisterAccount {
                account_id: 7,
                role: Role::User,
                password_hash: "$argon2id$fixed".into(),
                profile: AccountProfile {
                    email: " kim@example.com ".into(),
                    first_name: Some("test".into()),
                    ..Default::default()
                },
                now: t0(),
            },
        )
        .unwrap()
    }

    fn given(events: &[AccountEvent]) -> Account {
        Account::fold(events)
    }

    #[test]
    fn register_trims_the_email() {
        insta::assert_json_snapshot!(registered());
    }

    #[test]
    fn register_twice_is_refused() {
        let state = given(&registered());
        let again = decide_register(
            &state,
            RegisterAccount {
                account_id: 7,
                role: Role::User,
                password_hash: "x".into(),
                profile: AccountProfile {
                    email: "kim@example.com".into(),
                    ..Default::default()
                },
                now: t0(),
            },
        );
        assert_eq!(again, Err(AccountError::AlreadyRegistered));
    }

    #[test]
    fn profile_change_validates_and_emits_only_sent_fields() {
        let state = given(&registered());
        let changes = ProfileChanges {
            first_name: Some("james".into()),
            birthdate: Some("19970101".into()),
            gender: Some("M".into()),
            ..Default::default()
        };
        insta::assert_json_snapshot!(decide_change_profile(&state, changes, t0()).unwrap());
        let bad = ProfileChanges {
            gender: Some("X".into()),
            ..Default::default()
        };
        assert_eq!(
            decide_change_profile(&state, bad, t0()),
            Err(AccountError::InvalidGender)
        );
        assert_eq!(
            decide_change_profile(&state, ProfileChanges::default(), t0()),
            Ok(vec![])
        );
    }

    #[test]
    fn deactivate_then_activate() {
        let mut history = registered();
        let off = decide_set_active(&given(&history), false, t0()).unwrap();
        history.extend(off.clone());
        let again = decide_set_active(&given(&history), false, t0()).unwrap();
        assert!(again.is_empty(), "deactivating twice emits nothing");
        let on = decide_set_active(&given(&history), true, t0()).unwrap();
        insta::assert_json_snapshot!((off, on));
    }

    #[test]
    fn role_change_password_change_and_delete() {
        let history = registered();
        let state = given(&history);
        let role = decide_change_role(&state, Role::Manager, t0()).unwrap();
        let pw = decide_change_password(&state, 12, "$argon2id$new".into(), t0()).unwrap();
        assert_eq!(
            decide_change_password(&state, 3, "x".into(), t0()),
            Err(AccountError::PasswordTooShort)
        );
        let deleted = decide_delete(&state, t0()).unwrap();
        insta::assert_json_snapshot!((role, pw, deleted.clone()));
        let mut after = history.clone();
        after.extend(deleted);
        assert_eq!(
            decide_change_role(&given(&after), Role::Admin, t0()),
            Err(AccountError::Gone)
        );
    }

    #[test]
    fn push_token_needs_consent_and_a_well_formed_token() {
        let mut history = registered();
        let token = "fcm_token-ABCDEFGHIJKLMNOP:123";
        assert_eq!(
            decide_set_push_token(&given(&history), token, t0()),
            Err(AccountError::PushNotAgreed)
        );
        let policy = decide_change_policy(&given(&history), Some(true), None, t0()).unwrap();
        history.extend(policy.clone());
        assert_eq!(
            decide_set_push_token(&given(&history), "", t0()),
            Err(AccountError::InvalidPushToken)
        );
        let set = decide_set_push_token(&given(&history), token, t0()).unwrap();
        insta::assert_json_snapshot!((policy, set));
    }

    #[test]
    fn notifications_phone_and_withdrawal() {
        let mut history = registered();
        let state = given(&history);
        let notif = decide_change_notifications(
            &state,
            NotificationSettings {
                is_device_muted: true,
                is_device_alim_talk_enabled: false,
                is_basestation_alert_enabled: true,
            },
            t0(),
        )
        .unwrap();
        let phone = decide_change_phone(&state, "+821012345678", t0()).unwrap();
        let withdrawn = decide_withdraw(&state, t0()).unwrap();
        insta::assert_json_snapshot!((notif, phone, withdrawn.clone()));
        history.extend(withdrawn);
        assert_eq!(
            decide_withdraw(&given(&history), t0()),
            Err(AccountError::Gone)
        );
        assert_eq!(
            decide_withdraw(&Account::default(), t0()),
            Err(AccountError::NotFound)
        );
    }
}
