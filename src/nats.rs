//! Connecting to NATS. `NATS_URL` may name one server or a cluster as a comma-separated list
//! (`nats://a:4222,nats://b:4222`); the client also learns the other members from the servers.

use async_nats::{Client, ConnectOptions, ServerAddr};

#[derive(Debug, thiserror::Error)]
pub enum NatsUrlError {
    #[error("NATS_URL: {0:?} is not a NATS server address")]
    Invalid(String),
}

/// The servers of a `NATS_URL`.
pub fn server_addrs(nats_url: &str) -> Result<Vec<ServerAddr>, NatsUrlError> {
    let addrs: Vec<ServerAddr> = nats_url
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<ServerAddr>()
                .map_err(|_| NatsUrlError::Invalid(part.to_owned()))
        })
        .collect::<Result<_, _>>()?;
    if addrs.is_empty() {
        return Err(NatsUrlError::Invalid(nats_url.to_owned()));
    }
    Ok(addrs)
}

/// A client that connects in the background and reconnects without limit, so callers start
/// while NATS is down and resume when it returns.
pub async fn connect(nats_url: &str, name: &str) -> anyhow::Result<Client> {
    let addrs = server_addrs(nats_url)?;
    let client = ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connect(addrs)
        .await?;
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_is_a_comma_separated_list() {
        assert_eq!(
            server_addrs("nats://127.0.0.1:4222, nats://127.0.0.1:4223")
                .unwrap()
                .len(),
            2
        );
        assert_eq!(server_addrs("nats://127.0.0.1:4222").unwrap().len(), 1);
        assert!(server_addrs(" , ").is_err());
    }
}
