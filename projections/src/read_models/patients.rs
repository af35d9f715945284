//! Inline read model of patients ("real users") with the device each one holds.

use crate::{Mode, ProjectionError, ReadModel};
use async_trait::async_trait;
use fleetstream_events::{PatientEvent, StoredEvent};
use sqlx::PgConnection;

pub struct Patients;

#[async_trait]
impl ReadModel for Patients {
    type Event = PatientEvent;
    const NAME: &'static str = "patients";
    const TABLES: &'static [&'static str] = &["patients"];
    const MODE: Mode = Mode::Inline;

    async fn apply_event(
        &self,
        conn: &mut PgConnection,
        event: PatientEvent,
        _stored: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        match event {
            PatientEvent::PatientCreated {
                patient_id,
                root_user_id,
                profile: p,
                created_at,
            } => {
                sqlx::query(
                    "INSERT INTO patients (id, root_user_id, first_name, last_name, birthdate, gender, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(patient_id)
                .bind(root_user_id)
                .bind(&p.first_name)
                .bind(&p.last_name)
                .bind(&p.birthdate)
                .bind(&p.gender)
                .bind(created_at)
                .execute(&mut *conn)
                .await?;
            }
            PatientEvent::PatientUpdated {
                patient_id,
                changes: c,
                updated_at,
            } => {
                sqlx::query(
                    "UPDATE patients SET first_name = COALESCE($2, first_name), last_name = COALESCE($3, last_name), \
                     birthdate = COALESCE($4, birthdate), gender = COALESCE($5, gender), updated_at = $6 WHERE id = $1",
                )
                .bind(patient_id)
                .bind(&c.first_name)
                .bind(&c.last_name)
                .bind(&c.birthdate)
                .bind(&c.gender)
                .bind(updated_at)
                .execute(&mut *conn)
                .await?;
            }
            PatientEvent::PatientDeleted { patient_id, .. } => {
                sqlx::query("DELETE FROM patients WHERE id = $1")
                    .bind(patient_id)
                    .execute(&mut *conn)
                    .await?;
            }
            PatientEvent::PatientDeviceAssigned {
                patient_id,
                device_id,
                assigned_at,
            } => {
                sqlx::query("UPDATE patients SET device_id = $2, updated_at = $3 WHERE id = $1")
                    .bind(patient_id)
                    .bind(device_id)
                    .bind(assigned_at)
                    .execute(&mut *conn)
                    .await?;
            }
            PatientEvent::PatientDeviceReleased {
                patient_id,
                released_at,
                ..
            } => {
                sqlx::query("UPDATE patients SET device_id = NULL, updated_at = $2 WHERE id = $1")
                    .bind(patient_id)
                    .bind(released_at)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }
}
