//! WhatsApp Business templates as a ticket sends them (SPEC §7): the call handed to the provider
//! (name, language, parameters) and the text the chat shows for it.
//!
//! Only the body's numbered placeholders (`{{1}}`, `{{2}}`…) take parameters here; the provider's
//! own `components` (as synced into `Template::components`) say where they are.

use crate::validation::FieldError;
use serde::{Deserialize, Serialize};

/// Longest parameter, in characters (the provider's limit for a body parameter).
pub const MAX_PARAM_CHARS: usize = 1024;

/// A template to send: handed to the channel adapter as the `body` of an outbound message of kind
/// `template`, in JSON, so the adapter can build the provider's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateCall {
    pub name: String,
    pub language: String,
    /// The body's parameters, `{{1}}` first.
    pub params: Vec<String>,
}

/// The text of the template's `BODY` component, if it has one.
pub fn body_text(components: &serde_json::Value) -> Option<&str> {
    components.as_array()?.iter().find_map(|component| {
        let kind = component.get("type")?.as_str()?;
        if kind.eq_ignore_ascii_case("body") {
            component.get("text")?.as_str()
        } else {
            None
        }
    })
}

/// The numbered placeholders of `text`, in order of appearance: `{{n}}` with `n` ≥ 1.
fn placeholders(text: &str) -> Vec<(std::ops::Range<usize>, usize)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find("{{").map(|at| from + at) {
        let inner = open + 2;
        let Some(close) = text[inner..].find("}}").map(|at| inner + at) else {
            break;
        };
        match text[inner..close].trim().parse::<usize>() {
            Ok(number) if number >= 1 => {
                found.push((open..close + 2, number));
                from = close + 2;
            }
            _ => from = inner,
        }
    }
    found
}

/// How many parameters the body takes: its highest placeholder number.
pub fn param_count(text: &str) -> usize {
    placeholders(text)
        .into_iter()
        .map(|(_, number)| number)
        .max()
        .unwrap_or(0)
}

/// Checks the parameters against the body: exactly one per placeholder number, none blank or
/// longer than [`MAX_PARAM_CHARS`].
pub fn check_params(text: &str, params: &[String]) -> Result<(), FieldError> {
    let expected = param_count(text);
    if params.len() != expected {
        return Err(FieldError::new(
            "params",
            format!(
                "this template takes {expected} parameter(s), {} given",
                params.len()
            ),
        ));
    }
    for (index, param) in params.iter().enumerate() {
        if param.trim().is_empty() {
            return Err(FieldError::new(
                "params",
                format!("parameter {} must not be empty", index + 1),
            ));
        }
        if param.chars().count() > MAX_PARAM_CHARS {
            return Err(FieldError::new(
                "params",
                format!(
                    "parameter {} must be at most {MAX_PARAM_CHARS} characters",
                    index + 1
                ),
            ));
        }
    }
    Ok(())
}

/// The body with its placeholders filled: what the contact reads, kept as the message's text.
/// A placeholder without a parameter stays as it is.
pub fn render(text: &str, params: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (range, number) in placeholders(text) {
        out.push_str(&text[last..range.start]);
        match params.get(number - 1) {
            Some(param) => out.push_str(param),
            None => out.push_str(&text[range.clone()]),
        }
        last = range.end;
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn the_body_component_carries_the_text() {
        let components = json!([
            {"type": "HEADER", "format": "TEXT", "text": "Pedido"},
            {"type": "BODY", "text": "Olá {{1}}, seu pedido {{2}} saiu."},
            {"type": "FOOTER", "text": "Loja"}
        ]);
        assert_eq!(
            body_text(&components),
            Some("Olá {{1}}, seu pedido {{2}} saiu.")
        );
        assert_eq!(body_text(&json!([{"type": "HEADER", "text": "x"}])), None);
        assert_eq!(body_text(&json!({"type": "BODY"})), None);
    }

    #[test]
    fn placeholders_are_filled_in_number_order() {
        let text = "Olá {{1}}, seu pedido {{2}} saiu. Obrigado, {{1}}!";
        assert_eq!(param_count(text), 2);
        assert_eq!(
            render(text, &strings(&["Ana", "#42"])),
            "Olá Ana, seu pedido #42 saiu. Obrigado, Ana!"
        );
        assert_eq!(render("{{ 1 }}", &strings(&["x"])), "x");
        assert_eq!(
            render("{{name}} {{0}} {{1", &strings(&["x"])),
            "{{name}} {{0}} {{1",
            "only numbers from 1, closed, are placeholders"
        );
        assert_eq!(render("a {{2}} b", &strings(&["x"])), "a {{2}} b");
        assert_eq!(param_count("sem parâmetros"), 0);
    }

    #[test]
    fn parameters_must_match_the_placeholders_and_not_be_blank() {
        let text = "Olá {{1}}, seu pedido {{2}} saiu.";
        assert!(check_params(text, &strings(&["Ana", "#42"])).is_ok());
        let few = check_params(text, &strings(&["Ana"]));
        assert!(few.is_err_and(|e| e.field == "params" && e.message.contains("takes 2")));
        assert!(check_params(text, &strings(&["Ana", " "])).is_err());
        assert!(check_params(text, &["Ana".into(), "x".repeat(MAX_PARAM_CHARS + 1)]).is_err());
        assert!(check_params("fixo", &[]).is_ok());
    }
}
