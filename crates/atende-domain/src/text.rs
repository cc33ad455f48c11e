//! Text folding for search: lower case without accents, so "joão", "JOAO" and "João" match on every
//! store (SQLite's `LOWER` knows only ASCII).

/// Lower-cases and strips the diacritics of Latin letters (Portuguese, Spanish, French…).
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        out.push(match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            'ý' | 'ÿ' => 'y',
            other => other,
        });
    }
    out
}

/// What contact search matches against: name and e-mail, folded.
pub fn contact_search_text(name: &str, email: Option<&str>) -> String {
    match email {
        Some(email) if !email.is_empty() => format!("{} {}", fold(name), fold(email)),
        _ => fold(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_and_case_are_folded() {
        assert_eq!(fold("JOÃO Ávila"), "joao avila");
        assert_eq!(fold("Conceição"), "conceicao");
        assert_eq!(fold("plain"), "plain");
    }

    #[test]
    fn search_text_joins_name_and_email() {
        assert_eq!(contact_search_text("Zé", Some("ZE@x.com")), "ze ze@x.com");
        assert_eq!(contact_search_text("Zé", None), "ze");
    }
}
