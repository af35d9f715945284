//! Tokens, passwords and the `Caller` extractor every authenticated handler takes.

mod caller;
mod jwt;
pub mod password;

pub use caller::Caller;
pub use jwt::{Claims, IssuedToken, JwtKeys, TokenError, TokenType};
