//! The agent's signature (SPEC §7): an agent's reply starts with the agent's name in bold, in the
//! markup of the channel it goes out on, so the contact knows who is answering. Pure: the engine
//! applies it when the reply is queued, so the agent's chat, the provider and the widget all show
//! the same stored text.
//!
//! Formats per channel kind:
//! - WhatsApp (`whatsapp_cloud`, `evolution`): `*Name*:\n` — WhatsApp renders `*…*` as bold;
//! - Telegram: `Name:\n` — the Telegram adapter sends plain text (no `parse_mode`), where any
//!   markup would show literally;
//! - Instagram: `Name:\n` — Instagram messages have no bold markup;
//! - webchat: `Name:\n` — the widget renders message text as plain text (`textContent`).

use crate::ChannelKind;

/// Whether the channel renders `*…*` as bold.
fn has_bold_markup(kind: ChannelKind) -> bool {
    matches!(kind, ChannelKind::WhatsappCloud | ChannelKind::Evolution)
}

/// The line placed before an agent's reply on `kind`; empty when the name is blank. The name is
/// put on one line (line breaks and runs of spaces become one space) and, where `*` is the bold
/// markup, stripped of `*` so it cannot break the bold.
pub fn prefix(kind: ChannelKind, agent_name: &str) -> String {
    let bold = has_bold_markup(kind);
    let name = agent_name
        .split_whitespace()
        .map(|word| {
            if bold {
                word.replace('*', "")
            } else {
                word.to_owned()
            }
        })
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if name.is_empty() {
        String::new()
    } else if bold {
        format!("*{name}*:\n")
    } else {
        format!("{name}:\n")
    }
}

/// The reply as sent: the signature line, then the body. A blank body (a file without caption)
/// is left as it is: a caption holding only the name says nothing.
pub fn sign(kind: ChannelKind, agent_name: &str, body: &str) -> String {
    if body.trim().is_empty() {
        return body.to_owned();
    }
    format!("{}{body}", prefix(kind, agent_name))
}

/// Whether a reply on this ticket is signed: always with `enforce_signature`, else unless the
/// agent switched it off on the ticket.
pub fn applies(enforce_signature: bool, ticket_signature_disabled: bool) -> bool {
    enforce_signature || !ticket_signature_disabled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whatsapp_kinds_put_the_name_in_bold() {
        for kind in [ChannelKind::WhatsappCloud, ChannelKind::Evolution] {
            assert_eq!(sign(kind, "Ana", "Olá!"), "*Ana*:\nOlá!");
        }
    }

    #[test]
    fn telegram_is_plain_text_without_markup() {
        assert_eq!(sign(ChannelKind::Telegram, "Ana", "Olá!"), "Ana:\nOlá!");
    }

    #[test]
    fn instagram_has_no_bold_markup() {
        assert_eq!(sign(ChannelKind::Instagram, "Ana", "Olá!"), "Ana:\nOlá!");
    }

    #[test]
    fn webchat_shows_the_name_as_plain_text() {
        assert_eq!(sign(ChannelKind::Webchat, "Ana", "Olá!"), "Ana:\nOlá!");
    }

    #[test]
    fn the_name_is_one_line_and_cannot_break_the_bold() {
        assert_eq!(
            prefix(ChannelKind::WhatsappCloud, "  Ana\n *Souza*  "),
            "*Ana Souza*:\n"
        );
        assert_eq!(prefix(ChannelKind::Telegram, "Ana\tSouza"), "Ana Souza:\n");
        assert_eq!(prefix(ChannelKind::Telegram, "a*b"), "a*b:\n");
    }

    #[test]
    fn a_blank_name_or_a_blank_caption_is_not_signed() {
        assert_eq!(prefix(ChannelKind::Evolution, "  "), "");
        assert_eq!(prefix(ChannelKind::Evolution, "**"), "");
        assert_eq!(sign(ChannelKind::Evolution, "  ", "Olá"), "Olá");
        assert_eq!(sign(ChannelKind::Evolution, "Ana", ""), "");
        assert_eq!(sign(ChannelKind::Evolution, "Ana", " \n"), " \n");
    }

    #[test]
    fn the_ticket_switch_counts_only_when_not_enforced() {
        assert!(applies(false, false));
        assert!(!applies(false, true));
        assert!(applies(true, false));
        assert!(applies(true, true));
    }
}
