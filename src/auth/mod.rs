//! Tokens, passwords and the `Caller` extractor every authenticated handler takes.

mod caller;
mod jwt;
pub mod login;
pub mod password;
pub mod refresh;
pub mod throttle;

pub use caller::{bearer_token, AuthFailure, Caller};
pub use jwt::{Claims, IssuedToken, JwtKeys, TokenError, TokenType};
