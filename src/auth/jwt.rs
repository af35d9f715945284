use chrono::Utc;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
    /// Proof that a phone number passed SMS verification (Nueyne `valid_token`); `sub` is the
    /// phone number. Never accepted as an access or refresh token.
    Phone,
}

/// How long a Nueyne `valid_token` stays usable for signup.
pub const PHONE_TOKEN_TTL: Duration = Duration::from_secs(600);

/// The one token format every door issues (CONTRACT §1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    #[serde(rename = "type")]
    pub token_type: TokenType,
    pub jti: Uuid,
    pub iat: i64,
    pub exp: i64,
    /// Refresh tokens: the rotation family, revoked whole when a rotated token is reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<Uuid>,
}

impl Claims {
    pub fn account_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
    WrongType,
}

pub struct IssuedToken {
    pub token: String,
    pub claims: Claims,
}

/// HS256 only: a token signed with anything else, or with `alg: none`, is refused.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl JwtKeys {
    pub fn new(secret: &str, access_ttl: Duration, refresh_ttl: Duration) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            access_ttl,
            refresh_ttl,
        }
    }

    /// A `valid_token` for a phone number that passed SMS verification.
    pub fn issue_phone(&self, phone: &str) -> IssuedToken {
        self.issue_for(phone.to_owned(), "", TokenType::Phone, None)
    }

    pub fn issue(
        &self,
        account_id: i64,
        role: &str,
        token_type: TokenType,
        family: Option<Uuid>,
    ) -> IssuedToken {
        self.issue_for(account_id.to_string(), role, token_type, family)
    }

    fn issue_for(
        &self,
        sub: String,
        role: &str,
        token_type: TokenType,
        family: Option<Uuid>,
    ) -> IssuedToken {
        let now = Utc::now().timestamp();
        let ttl = match token_type {
            TokenType::Access => self.access_ttl,
            TokenType::Refresh => self.refresh_ttl,
            TokenType::Phone => PHONE_TOKEN_TTL,
        };
        let claims = Claims {
            sub,
            role: role.to_owned(),
            token_type,
            jti: Uuid::new_v4(),
            iat: now,
            exp: now + ttl.as_secs() as i64,
            fam: family,
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 encoding of plain claims cannot fail");
        IssuedToken { token, claims }
    }

    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?
            .claims;
        if claims.token_type != expected {
            return Err(TokenError::WrongType);
        }
        Ok(claims)
    }
}
