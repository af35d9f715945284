//! Device rows of the `devices` read model and their JSON per seed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceRow {
    pub id: i64,
    pub public_id: Uuid,
    pub unique_id: String,
    pub serial_code: Option<String>,
    pub mac_id: Option<String>,
    pub name: String,
    pub device_alias: Option<String>,
    pub device_type: Option<String>,
    pub project_id: Option<i64>,
    pub hardware_id: Option<i64>,
    pub now_firmware_id: Option<i64>,
    pub firmware_version: Option<String>,
    pub ip_address: Option<String>,
    pub group_id: Option<i64>,
    pub owner_id: Option<i64>,
    pub description: Option<String>,
    pub status: String,
    pub connectivity: String,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub real_user_id: Option<i64>,
    pub last_log_file_id: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Connectivity and `last_seen_at` come from `device_presence` (the async `device_status`
/// projection); the subqueries resolve `id` to the device row with or without an alias.
pub const DEVICE_COLUMNS: &str =
    "id, public_id, unique_id, serial_code, mac_id, name, device_alias, \
    device_type, project_id, hardware_id, now_firmware_id, firmware_version, ip_address, group_id, \
    owner_id, description, status, \
    coalesce((SELECT connectivity FROM device_presence WHERE device_id = id), 'offline') AS connectivity, \
    (SELECT last_seen_at FROM device_presence WHERE device_id = id) AS last_seen_at, \
    real_user_id, last_log_file_id, created_at, updated_at";

/// The seed 002 status of a device row aliased `d` (lifecycle, or connectivity when active).
pub const CORE_STATUS: &str = "CASE WHEN d.status = 'active' THEN coalesce((SELECT connectivity \
    FROM device_presence WHERE device_id = d.id), 'offline') ELSE d.status END";

use crate::http::{time, Namespace};

/// Seed 000's format (Addnox/Lux namespace).
pub fn iso(at: DateTime<Utc>) -> String {
    time::format(Namespace::Nueyne, at)
}

fn core(at: DateTime<Utc>) -> String {
    time::format(Namespace::Core, at)
}

fn drf(at: DateTime<Utc>) -> String {
    time::format(Namespace::Drf, at)
}

/// Seed 002's timestamps: UTC, no offset, whole seconds.
pub fn naive(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Seed 000 device (`child-device`, `check-device`, `update-alias`).
#[derive(Debug, Serialize, ToSchema)]
pub struct NueyneDevice {
    pub id: i64,
    pub real_user_id: Option<i64>,
    pub project_id: Option<i64>,
    pub hardware_id: Option<i64>,
    pub now_firmware_id: Option<i64>,
    pub unique_id: String,
    pub serial_code: Option<String>,
    pub device_alias: Option<String>,
    pub mac_id: Option<String>,
    pub created_at: String,
    pub last_log_file_id: i64,
}

/// Seed 002 device.
#[derive(Debug, Serialize, ToSchema)]
pub struct CoreDevice {
    pub id: i64,
    pub device_uid: String,
    pub name: String,
    pub device_type: Option<String>,
    /// The lifecycle unless it is `active`, then the connectivity (CONTRACT §3).
    #[schema(pattern = "^(online|offline|inactive|maintenance|error)$")]
    pub status: String,
    pub firmware_version: Option<String>,
    pub ip_address: Option<String>,
    pub group_id: Option<i64>,
    pub owner_id: Option<i64>,
    /// UTC without an offset, as seed 002 shows (`2025-01-15T12:00:00`).
    pub last_seen_at: Option<String>,
    pub created_at: String,
}

/// Seed 004 device.
#[derive(Debug, Serialize, ToSchema)]
pub struct DrfDevice {
    pub id: i64,
    pub public_id: Uuid,
    pub name: String,
    #[schema(pattern = "^(active|inactive|maintenance|error)$")]
    pub status: String,
    pub description: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl DeviceRow {
    pub fn nueyne_json(&self) -> NueyneDevice {
        NueyneDevice {
            id: self.id,
            real_user_id: self.real_user_id,
            project_id: self.project_id,
            hardware_id: self.hardware_id,
            now_firmware_id: self.now_firmware_id,
            unique_id: self.unique_id.clone(),
            serial_code: self.serial_code.clone(),
            device_alias: self.device_alias.clone(),
            mac_id: self.mac_id.clone(),
            created_at: iso(self.created_at),
            last_log_file_id: self.last_log_file_id,
        }
    }

    pub fn core_json(&self) -> CoreDevice {
        let status = if self.status == "active" {
            self.connectivity.as_str()
        } else {
            self.status.as_str()
        };
        CoreDevice {
            id: self.id,
            device_uid: self.unique_id.clone(),
            name: self.name.clone(),
            device_type: self.device_type.clone(),
            status: status.to_owned(),
            firmware_version: self.firmware_version.clone(),
            ip_address: self.ip_address.clone(),
            group_id: self.group_id,
            owner_id: self.owner_id,
            last_seen_at: self.last_seen_at.map(core),
            created_at: core(self.created_at),
        }
    }

    pub fn drf_json(&self) -> DrfDevice {
        DrfDevice {
            id: self.id,
            public_id: self.public_id,
            name: self.name.clone(),
            status: self.status.clone(),
            description: self.description.clone(),
            created_at: drf(self.created_at),
            updated_at: drf(self.updated_at),
        }
    }
}

pub async fn by_id(conn: &mut PgConnection, id: i64) -> Result<Option<DeviceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1 AND deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn by_unique_id(
    conn: &mut PgConnection,
    unique_id: &str,
) -> Result<Option<DeviceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DEVICE_COLUMNS} FROM devices WHERE unique_id = $1 AND deleted_at IS NULL"
    ))
    .bind(unique_id)
    .fetch_optional(conn)
    .await
}

/// Devices with this (already normalized) serial code; the caller applies the MAC rule.
pub async fn by_serial(
    conn: &mut PgConnection,
    serial_code: &str,
) -> Result<Vec<DeviceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DEVICE_COLUMNS} FROM devices WHERE upper(serial_code) = $1 AND deleted_at IS NULL"
    ))
    .bind(serial_code)
    .fetch_all(conn)
    .await
}

/// Visibility (CONTRACT §7): managers and above see every device; others the devices they own
/// or that are paired with one of their patients.
pub async fn visible_by_id(
    conn: &mut PgConnection,
    id: i64,
    account_id: i64,
    is_manager: bool,
) -> Result<Option<DeviceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DEVICE_COLUMNS} FROM devices d WHERE id = $1 AND deleted_at IS NULL AND ({VISIBLE})"
    ))
    .bind(id)
    .bind(account_id)
    .bind(is_manager)
    .fetch_optional(conn)
    .await
}

/// The id and owner of a device the caller may see (the visibility rule below), without the
/// rest of the row: the hot path of telemetry writes and reads.
pub async fn visible_owner(
    conn: &mut PgConnection,
    id: i64,
    account_id: i64,
    is_manager: bool,
) -> Result<Option<(i64, Option<i64>)>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT id, owner_id FROM devices d WHERE id = $1 AND deleted_at IS NULL AND ({VISIBLE})"
    ))
    .bind(id)
    .bind(account_id)
    .bind(is_manager)
    .fetch_optional(conn)
    .await
}

/// SQL predicate of the visibility rule; binds `$2` = account id, `$3` = is manager.
pub const VISIBLE: &str = "$3 OR d.owner_id = $2 OR EXISTS (SELECT 1 FROM patients p \
    WHERE p.id = d.real_user_id AND p.root_user_id = $2)";

/// Number of devices the caller may see (the visibility rule above).
pub async fn count_visible(
    conn: &mut PgConnection,
    account_id: i64,
    is_manager: bool,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM devices d WHERE d.deleted_at IS NULL AND ({VISIBLE})"
    ))
    // `VISIBLE` binds $2 and $3; $1 is unused here (typed by the bind, so Postgres accepts it).
    .bind(0_i64)
    .bind(account_id)
    .bind(is_manager)
    .fetch_one(conn)
    .await
}

/// One page of the devices the caller may see, by id.
pub async fn page_visible(
    conn: &mut PgConnection,
    account_id: i64,
    is_manager: bool,
    offset: i64,
    limit: i64,
) -> Result<Vec<DeviceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.deleted_at IS NULL AND ({VISIBLE}) \
         ORDER BY d.id LIMIT $4 OFFSET $1"
    ))
    .bind(offset)
    .bind(account_id)
    .bind(is_manager)
    .bind(limit)
    .fetch_all(conn)
    .await
}
