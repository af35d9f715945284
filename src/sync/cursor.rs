//! The pull cursor: an opaque token for a position in the event log, `(transaction id, global
//! position)`, so a client's clock can never make it miss a change.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub transaction_id: i64,
    pub global_position: i64,
}

impl Cursor {
    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "v1.{}.{}",
            self.transaction_id, self.global_position
        ))
    }

    /// `None` when the token is not one this server issued.
    pub fn decode(token: &str) -> Option<Self> {
        let raw = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let mut parts = raw.split('.');
        if parts.next()? != "v1" {
            return None;
        }
        let transaction_id = parts.next()?.parse().ok()?;
        let global_position = parts.next()?.parse().ok()?;
        if parts.next().is_some() || transaction_id < 0 || global_position < 0 {
            return None;
        }
        Some(Self {
            transaction_id,
            global_position,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let c = Cursor {
            transaction_id: 812,
            global_position: 4051,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in ["", "nope", "djEuMS4y!", &URL_SAFE_NO_PAD.encode("v2.1.2")] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}
