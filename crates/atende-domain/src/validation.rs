//! Validation failures that name the field and say what is wrong, mapped to 422 at the edge.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One or more field errors; the first is the one reported in the JSON error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.first().map(|e| e.to_string()).unwrap_or_else(|| "invalid input".to_owned()))]
pub struct ValidationError(pub Vec<FieldError>);

impl ValidationError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError::new(field, message)])
    }
}

impl From<FieldError> for ValidationError {
    fn from(error: FieldError) -> Self {
        Self(vec![error])
    }
}

/// Trims and checks a required short text.
pub fn required_text(field: &str, value: &str, max_chars: usize) -> Result<String, FieldError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > max_chars {
        return Err(FieldError::new(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// `#rgb` or `#rrggbb`, normalised to lower-case `#rrggbb`.
pub fn color(field: &str, value: &str) -> Result<String, FieldError> {
    let hex = value.trim().strip_prefix('#').unwrap_or("");
    let valid = hex.chars().all(|c| c.is_ascii_hexdigit());
    match (valid, hex.len()) {
        (true, 6) => Ok(format!("#{}", hex.to_ascii_lowercase())),
        (true, 3) => Ok(format!(
            "#{}",
            hex.chars()
                .flat_map(|c| [c, c])
                .collect::<String>()
                .to_ascii_lowercase()
        )),
        _ => Err(FieldError::new(field, "must be a colour like #1a2b3c")),
    }
}

/// A plausible e-mail address, lower-cased (emails are unique case-insensitively, SPEC §1).
pub fn email(field: &str, value: &str) -> Result<String, FieldError> {
    let trimmed = value.trim().to_lowercase();
    let Some((local, domain)) = trimmed.split_once('@') else {
        return Err(FieldError::new(
            field,
            "must be an e-mail address like ana@example.com",
        ));
    };
    let ok = !local.is_empty()
        && domain.len() >= 3
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !trimmed.chars().any(char::is_whitespace)
        && trimmed.len() <= 254;
    if ok {
        Ok(trimmed)
    } else {
        Err(FieldError::new(
            field,
            "must be an e-mail address like ana@example.com",
        ))
    }
}

/// Password policy for new passwords.
pub fn password(field: &str, value: &str) -> Result<(), FieldError> {
    let count = value.chars().count();
    if count < 8 {
        return Err(FieldError::new(field, "must have at least 8 characters"));
    }
    if count > 256 {
        return Err(FieldError::new(field, "must have at most 256 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_are_normalised() {
        assert_eq!(color("c", "#ABC").as_deref(), Ok("#aabbcc"));
        assert_eq!(color("c", "#1A2b3C").as_deref(), Ok("#1a2b3c"));
        assert!(color("c", "red").is_err());
        assert!(color("c", "#12345").is_err());
    }

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(
            email("e", " Ana@Example.COM ").as_deref(),
            Ok("ana@example.com")
        );
        assert!(email("e", "ana").is_err());
        assert!(email("e", "ana@x").is_err());
        assert!(email("e", "a na@example.com").is_err());
    }
}
