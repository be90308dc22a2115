//! `POST /api/chat`'s body, checked before anything runs.

use buttress::degrade::Invalid;
use serde::{Deserialize, Serialize};

/// The longest message taken, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// What a conversation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    /// Anything.
    General,
    /// Code and systems.
    Engineering,
    /// Papers and experiments.
    Research,
    /// Help with the product.
    Support,
}

impl Domain {
    /// Every domain, in order.
    pub const ALL: [Domain; 4] = [
        Domain::General,
        Domain::Engineering,
        Domain::Research,
        Domain::Support,
    ];

    /// Its name in requests.
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::General => "general",
            Domain::Engineering => "engineering",
            Domain::Research => "research",
            Domain::Support => "support",
        }
    }

    fn parse(text: &str) -> Option<Domain> {
        Domain::ALL.into_iter().find(|d| d.as_str() == text)
    }
}

/// A checked chat request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    /// The message, 1 to 4000 characters, not only white space.
    pub message: String,
    /// Its domain.
    pub domain: Domain,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    message: Option<serde_json::Value>,
    domain: Option<serde_json::Value>,
}

/// Reads and checks `body`: every field in error at once.
pub fn parse(body: &[u8]) -> Result<ChatRequest, Invalid> {
    let mut invalid = Invalid::new();
    let body: Body = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => {
            invalid.push(
                "body",
                format!("must be {{\"message\": \"...\", \"domain\": \"...\"}}: {e}"),
            );
            return Err(invalid);
        }
    };
    let message = match body.message {
        None | Some(serde_json::Value::Null) => {
            invalid.push("message", "is required");
            None
        }
        Some(serde_json::Value::String(m)) => {
            let chars = m.chars().count();
            if m.trim().is_empty() {
                invalid.push("message", "must not be empty");
                None
            } else if chars > MAX_MESSAGE_CHARS {
                invalid.push(
                    "message",
                    format!("is {chars} characters; at most {MAX_MESSAGE_CHARS} are taken"),
                );
                None
            } else {
                Some(m)
            }
        }
        Some(_) => {
            invalid.push("message", "must be a string");
            None
        }
    };
    let names = Domain::ALL.map(Domain::as_str).join(", ");
    let domain = match body.domain {
        None | Some(serde_json::Value::Null) => {
            invalid.push("domain", format!("is required: one of {names}"));
            None
        }
        Some(serde_json::Value::String(d)) => {
            let found = Domain::parse(&d);
            if found.is_none() {
                let shown: String = d.chars().take(40).collect();
                invalid.push("domain", format!("{shown:?} is not one of {names}"));
            }
            found
        }
        Some(_) => {
            invalid.push("domain", format!("must be a string: one of {names}"));
            None
        }
    };
    invalid.into_result()?;
    match (message, domain) {
        (Some(message), Some(domain)) => Ok(ChatRequest { message, domain }),
        _ => Err(Invalid::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(body: &str) -> Vec<String> {
        let e = parse(body.as_bytes()).unwrap_err();
        e.errors().iter().map(|f| f.field.clone()).collect()
    }

    #[test]
    fn a_good_request() {
        let r = parse(br#"{"message": "hello", "domain": "research"}"#).unwrap();
        assert_eq!(r.domain, Domain::Research);
        assert_eq!(r.message, "hello");
        let long = "é".repeat(MAX_MESSAGE_CHARS);
        assert!(
            parse(format!(r#"{{"message": "{long}", "domain": "general"}}"#).as_bytes()).is_ok()
        );
    }

    #[test]
    fn each_field_in_error_is_named() {
        assert_eq!(
            fields(r#"{"message": "", "domain": "general"}"#),
            ["message"]
        );
        assert_eq!(
            fields(r#"{"message": "  \n ", "domain": "general"}"#),
            ["message"]
        );
        assert_eq!(fields(r#"{"domain": "general"}"#), ["message"]);
        assert_eq!(
            fields(r#"{"message": 5, "domain": "general"}"#),
            ["message"]
        );
        let long = "a".repeat(MAX_MESSAGE_CHARS + 1);
        assert_eq!(
            fields(&format!(r#"{{"message": "{long}", "domain": "general"}}"#)),
            ["message"]
        );
        assert_eq!(
            fields(r#"{"message": "hi", "domain": "cooking"}"#),
            ["domain"]
        );
        assert_eq!(fields(r#"{"message": "hi"}"#), ["domain"]);
        assert_eq!(
            fields(r#"{"message": "", "domain": 3}"#),
            ["message", "domain"]
        );
        assert_eq!(
            fields(r#"{"message": "hi", "domain": "general", "x": 1}"#),
            ["body"]
        );
        assert_eq!(fields("not json"), ["body"]);
    }
}
