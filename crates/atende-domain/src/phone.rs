//! Phone numbers normalised to E.164, so "(11) 98765-4321" and "+55 11 98765-4321" are one number.

/// Country code assumed for numbers written without one (the product's users are mostly in Brazil).
pub const DEFAULT_COUNTRY_CODE: &str = "55";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("'{0}' is not a phone number: use digits, optionally with +country code")]
    NotANumber(String),
    #[error("'{0}' has {1} digits; a phone number in E.164 has 8 to 15")]
    WrongLength(String, usize),
}

/// Normalises a phone number to `+<digits>`.
///
/// Accepts spaces, dots, dashes and parentheses. A leading `+` or `00` means the country code is
/// present; a Brazilian national number (10 or 11 digits, or with a leading trunk `0`) gets `+55`.
pub fn normalize_e164(raw: &str) -> Result<String, PhoneError> {
    let trimmed = raw.trim();
    let mut digits = String::with_capacity(trimmed.len());
    for (index, c) in trimmed.chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if index == 0 => {}
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(PhoneError::NotANumber(raw.to_owned())),
        }
    }
    if digits.is_empty() {
        return Err(PhoneError::NotANumber(raw.to_owned()));
    }
    let international = if trimmed.starts_with('+') {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else {
        let national = digits.strip_prefix('0').unwrap_or(&digits);
        if matches!(national.len(), 10 | 11) {
            format!("{DEFAULT_COUNTRY_CODE}{national}")
        } else {
            digits
        }
    };
    if !(8..=15).contains(&international.len()) {
        return Err(PhoneError::WrongLength(raw.to_owned(), international.len()));
    }
    Ok(format!("+{international}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brazilian_national_numbers_get_country_code() {
        assert_eq!(
            normalize_e164("(11) 98765-4321").as_deref(),
            Ok("+5511987654321")
        );
        assert_eq!(
            normalize_e164("011 98765-4321").as_deref(),
            Ok("+5511987654321")
        );
        assert_eq!(normalize_e164("1132654321").as_deref(), Ok("+551132654321"));
    }

    #[test]
    fn international_forms_are_kept() {
        assert_eq!(
            normalize_e164("+55 11 98765-4321").as_deref(),
            Ok("+5511987654321")
        );
        assert_eq!(
            normalize_e164("0044 20 7946 0958").as_deref(),
            Ok("+442079460958")
        );
        assert_eq!(
            normalize_e164("5511987654321").as_deref(),
            Ok("+5511987654321")
        );
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(normalize_e164("abc").is_err());
        assert!(normalize_e164("").is_err());
        assert!(normalize_e164("123").is_err());
        assert!(normalize_e164("+1234567890123456").is_err());
        assert!(normalize_e164("11+98765").is_err());
    }
}
