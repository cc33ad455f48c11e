use super::*;
use proptest::prelude::*;
use serde_json::json;

/// Every key of the SPEC §10 table, in the table's order.
const SPEC_KEYS: [&str; 58] = [
    "hide_others_tickets",
    "hide_bot_tickets",
    "force_wallet_routing",
    "show_unassigned_to_all",
    "supervisor_sees_as_user",
    "fast_send",
    "send_delay_min_ms",
    "send_delay_max_ms",
    "active_bot_flow",
    "ignore_group_messages",
    "ignore_instagram_stories",
    "show_groups_to_all",
    "show_closed_to_all",
    "reject_calls",
    "reject_call_message",
    "chatbot_tab",
    "pin_connections_top",
    "keep_user_on_pending",
    "show_message_history",
    "order_by_last_message",
    "disable_integrations_in_wallet",
    "integration_wait_for_reply",
    "wallet_overflow",
    "keep_contact_name",
    "force_admin_on_pending",
    "designated_admin",
    "audio_recorder_plugin",
    "audio_waveform",
    "enforce_signature",
    "feature_controls",
    "require_demand_on_close",
    "tab_counters",
    "auto_resolve_idle",
    "auto_resolve_after_minutes",
    "auto_resolve_message",
    "hide_old_tickets",
    "old_ticket_days",
    "sound_notifications",
    "persist_media_download",
    "media_download_attempts",
    "out_of_hours_message_max",
    "tickets_page_size",
    "chat_messages_page_size",
    "blocked_numbers",
    "use_user_business_hours",
    "allow_pause",
    "waba_send_outside_window",
    "timezone",
    "business_hours",
    "out_of_hours_message",
    "reopen_window_minutes",
    "smtp_enabled",
    "smtp_host",
    "smtp_port",
    "smtp_username",
    "smtp_password",
    "smtp_security",
    "smtp_from",
];

/// A tenant with flow 7 and admin 3.
struct Tenant;

impl SettingRefs for Tenant {
    fn flow_exists(&self, id: FlowId) -> bool {
        id == FlowId(7)
    }
    fn admin_user_exists(&self, id: UserId) -> bool {
        id == UserId(3)
    }
}

fn invalid_reason(key: &str, value: Value) -> String {
    match validate(key, &value, &Tenant) {
        Err(SettingError::Invalid {
            key: reported,
            reason,
        }) => {
            assert_eq!(reported, key);
            reason
        }
        other => panic!("{key} = {value}: expected Invalid, got {other:?}"),
    }
}

fn valid(key: &str, value: Value) -> Value {
    validate(key, &value, &Tenant).unwrap_or_else(|error| panic!("{key} = {value}: {error}"))
}

#[test]
fn every_spec_key_is_registered_exactly_once() {
    let keys: Vec<&str> = registry().iter().map(|def| def.key).collect();
    assert_eq!(keys.len(), SPEC_KEYS.len());
    for key in SPEC_KEYS {
        assert_eq!(keys.iter().filter(|k| **k == key).count(), 1, "{key}");
        assert_eq!(find(key).map(|def| def.key), Some(key));
    }
}

#[test]
fn registry_is_in_group_display_order() {
    let position = |group: SettingGroup| SettingGroup::ALL.iter().position(|g| *g == group);
    let groups: Vec<_> = registry().iter().map(|def| position(def.group)).collect();
    assert!(
        groups.windows(2).all(|pair| pair[0] <= pair[1]),
        "{groups:?}"
    );
    for group in SettingGroup::ALL {
        assert!(
            registry().iter().any(|def| def.group == *group),
            "{group} is empty"
        );
        for locale in Locale::ALL {
            assert!(!group.title(*locale).is_empty());
        }
    }
}

#[test]
fn every_default_validates_against_its_own_kind() {
    for def in registry() {
        let default = def.default_value();
        assert_eq!(
            validate(def.key, &default, &Tenant),
            Ok(default.clone()),
            "{}",
            def.key
        );
    }
}

#[test]
fn every_key_has_labels_and_help_in_both_languages() {
    for def in registry() {
        for locale in Locale::ALL {
            for text in [def.label(*locale), def.help(*locale)] {
                assert!(!text.trim().is_empty(), "{} {locale}", def.key);
                assert!(
                    !text.contains("  "),
                    "{} {locale}: double space in {text:?}",
                    def.key
                );
            }
        }
        assert_ne!(def.help_pt, def.help_en, "{}", def.key);
    }
    assert_eq!(
        find("fast_send").map(|def| def.label(Locale::PtBr)),
        Some("Usar Envio Rápido de Mensagens")
    );
    assert_eq!(
        find("fast_send").map(|def| def.label(Locale::En)),
        Some("Use fast message sending")
    );
}

#[test]
fn defaults_are_the_spec_defaults() {
    let expected = [
        ("hide_others_tickets", json!(false)),
        ("ignore_group_messages", json!(true)),
        ("show_groups_to_all", json!(true)),
        ("show_message_history", json!(true)),
        ("order_by_last_message", json!(true)),
        ("integration_wait_for_reply", json!(true)),
        ("tab_counters", json!(true)),
        ("sound_notifications", json!(true)),
        ("persist_media_download", json!(true)),
        ("media_download_attempts", json!(5)),
        ("out_of_hours_message_max", json!(1)),
        ("tickets_page_size", json!(40)),
        ("chat_messages_page_size", json!(50)),
        ("auto_resolve_after_minutes", json!(1440)),
        ("old_ticket_days", json!(30)),
        ("reopen_window_minutes", json!(120)),
        ("send_delay_min_ms", json!(2000)),
        ("send_delay_max_ms", json!(5000)),
        ("smtp_port", json!(587)),
        ("smtp_security", json!("starttls")),
        ("smtp_host", json!("")),
        ("smtp_from", json!("")),
        ("smtp_password", json!(null)),
        ("timezone", json!("America/Sao_Paulo")),
        (
            "business_hours",
            json!({"always_open": true, "days": {}, "holidays": []}),
        ),
        ("active_bot_flow", json!(null)),
        ("designated_admin", json!(null)),
        ("feature_controls", json!([])),
        ("blocked_numbers", json!([])),
    ];
    for (key, value) in expected {
        assert_eq!(
            find(key).map(SettingDef::default_value),
            Some(value),
            "{key}"
        );
    }
    let bool_true: Vec<&str> = registry()
        .iter()
        .filter(|def| def.default == SettingDefault::Bool(true))
        .map(|def| def.key)
        .collect();
    assert_eq!(
        bool_true,
        [
            "show_groups_to_all",
            "show_message_history",
            "integration_wait_for_reply",
            "persist_media_download",
            "ignore_group_messages",
            "order_by_last_message",
            "tab_counters",
            "sound_notifications",
        ]
    );
    for key in [
        "reject_call_message",
        "auto_resolve_message",
        "out_of_hours_message",
    ] {
        let text = find(key).map(SettingDef::default_value);
        assert!(
            text.as_ref()
                .and_then(Value::as_str)
                .is_some_and(|t| t.len() > 20),
            "{key}: {text:?}"
        );
    }
}

#[test]
fn type_names_are_the_api_types() {
    let expected = [
        ("fast_send", "bool"),
        ("tickets_page_size", "int"),
        ("reject_call_message", "text"),
        ("smtp_security", "enum"),
        ("feature_controls", "set"),
        ("blocked_numbers", "phone_list"),
        ("active_bot_flow", "flow_id"),
        ("designated_admin", "user_id"),
        ("timezone", "timezone"),
        ("business_hours", "schedule"),
        ("smtp_from", "email"),
        ("smtp_password", "secret"),
    ];
    for (key, type_name) in expected {
        assert_eq!(
            find(key).map(|def| def.kind.type_name()),
            Some(type_name),
            "{key}"
        );
    }
    let secrets: Vec<&str> = registry()
        .iter()
        .filter(|def| def.is_secret())
        .map(|def| def.key)
        .collect();
    assert_eq!(secrets, ["smtp_password"]);
}

#[test]
fn smtp_security_options_match_the_typed_enum() {
    let Some(SettingDef {
        kind: SettingKind::Enum(options),
        ..
    }) = find("smtp_security")
    else {
        panic!("smtp_security is not an enum");
    };
    let typed: Vec<&str> = SmtpSecurity::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(*options, typed.as_slice());
}

#[test]
fn unknown_key_is_reported_as_unknown() {
    let error = validate("no_such_setting", &json!(true), &Tenant).unwrap_err();
    assert_eq!(
        error,
        SettingError::UnknownKey("no_such_setting".to_owned())
    );
    assert_eq!(error.to_string(), "unknown setting 'no_such_setting'");
    assert!(find("no_such_setting").is_none());
}

#[test]
fn bools_must_be_json_booleans() {
    assert_eq!(valid("fast_send", json!(true)), json!(true));
    assert_eq!(
        invalid_reason("fast_send", json!("true")),
        "must be true or false"
    );
    assert_eq!(
        invalid_reason("fast_send", json!(null)),
        "must be true or false"
    );
}

#[test]
fn ints_out_of_range_are_rejected_with_the_range() {
    assert_eq!(valid("tickets_page_size", json!(200)), json!(200));
    assert_eq!(
        invalid_reason("tickets_page_size", json!(5)),
        "must be between 10 and 200, got 5"
    );
    assert_eq!(
        invalid_reason("tickets_page_size", json!(40.5)),
        "must be a whole number between 10 and 200"
    );
    assert_eq!(
        invalid_reason("tickets_page_size", json!("40")),
        "must be a whole number between 10 and 200"
    );
    assert_eq!(
        invalid_reason("send_delay_max_ms", json!(60_001)),
        "must be between 0 and 60000, got 60001"
    );
    assert_eq!(valid("out_of_hours_message_max", json!(0)), json!(0));
    let error = validate("smtp_port", &json!(70000), &Tenant).unwrap_err();
    assert_eq!(
        error.to_string(),
        "smtp_port: must be between 1 and 65535, got 70000"
    );
}

#[test]
fn enums_and_sets_accept_only_their_members() {
    assert_eq!(valid("smtp_security", json!("tls")), json!("tls"));
    assert_eq!(
        invalid_reason("smtp_security", json!("ssl")),
        "'ssl' is not one of: none, starttls, tls"
    );
    assert_eq!(
        invalid_reason("smtp_security", json!(1)),
        "must be one of: none, starttls, tls"
    );
    assert_eq!(
        valid("feature_controls", json!(["force_close", "spy", "spy"])),
        json!(["spy", "force_close"])
    );
    assert_eq!(valid("feature_controls", json!([])), json!([]));
    assert_eq!(
        invalid_reason("feature_controls", json!(["peek"])),
        "'peek' is not one of: spy, force_close"
    );
    assert_eq!(
        invalid_reason("feature_controls", json!("spy")),
        "must be a list of: spy, force_close"
    );
}

#[test]
fn blocked_numbers_are_normalised_to_e164_without_duplicates() {
    assert_eq!(
        valid(
            "blocked_numbers",
            json!(["(11) 98765-4321", "+5511987654321"])
        ),
        json!(["+5511987654321"])
    );
    assert_eq!(
        valid(
            "blocked_numbers",
            json!(["+44 20 7946 0958", " ", "011 3265-4321"])
        ),
        json!(["+442079460958", "+551132654321"])
    );
}

#[test]
fn invalid_blocked_numbers_are_named_in_the_reason() {
    let reason = invalid_reason("blocked_numbers", json!(["abc", "(11) 98765-4321", "123"]));
    assert!(reason.starts_with("invalid phone numbers: "), "{reason}");
    assert!(reason.contains("'abc' is not a phone number"), "{reason}");
    assert!(reason.contains("'123' has 3 digits"), "{reason}");
    assert!(!reason.contains("98765"), "{reason}");
    assert_eq!(
        invalid_reason("blocked_numbers", json!("11987654321")),
        "must be a list of phone numbers"
    );
    assert!(
        invalid_reason("blocked_numbers", json!([5511987654321_i64]))
            .contains("entry 0 is not a text")
    );
}

#[test]
fn timezones_must_be_iana_names() {
    assert_eq!(
        valid("timezone", json!(" Europe/Lisbon ")),
        json!("Europe/Lisbon")
    );
    let reason = invalid_reason("timezone", json!("Mars/Olympus_Mons"));
    assert!(
        reason.contains("'Mars/Olympus_Mons' is not an IANA time zone name"),
        "{reason}"
    );
    assert!(invalid_reason("timezone", json!(-3)).contains("IANA"));
}

#[test]
fn schedules_are_validated_and_sorted() {
    let stored = valid(
        "business_hours",
        json!({"days": {"mon": [{"start": "13:00", "end": "18:00"}, {"start": "8:00", "end": "12:00"}]}}),
    );
    assert_eq!(
        stored,
        json!({"days": {"mon": [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}]}, "holidays": []})
    );
    let overlapping = json!({"days": {"mon": [{"start": "08:00", "end": "12:30"}, {"start": "12:00", "end": "18:00"}]}});
    assert_eq!(
        invalid_reason("business_hours", overlapping.clone()),
        "days.mon[1]: 12:00-18:00 overlaps window 0 (08:00-12:30)"
    );
    assert_eq!(
        validate("business_hours", &overlapping, &Tenant)
            .unwrap_err()
            .to_string(),
        "business_hours: days.mon[1]: 12:00-18:00 overlaps window 0 (08:00-12:30)"
    );
    assert_eq!(
        invalid_reason(
            "business_hours",
            json!({"days": {"tue": [{"start": "18:00", "end": "09:00"}]}})
        ),
        "days.tue[0].end: must be later than start (18:00)"
    );
    assert!(invalid_reason("business_hours", json!(null)).starts_with("must be an object"));
}

#[test]
fn emails_may_be_empty_for_unset() {
    assert_eq!(valid("smtp_from", json!("")), json!(""));
    assert_eq!(
        valid("smtp_from", json!(" Avisos@Example.COM ")),
        json!("avisos@example.com")
    );
    assert_eq!(
        invalid_reason("smtp_from", json!("avisos")),
        "must be an e-mail address like ana@example.com"
    );
    assert!(invalid_reason("smtp_from", json!(null)).starts_with("must be an e-mail address"));
}

#[test]
fn texts_are_trimmed_and_bounded() {
    assert_eq!(
        valid("reject_call_message", json!("  Só texto, por favor.\n")),
        json!("Só texto, por favor.")
    );
    assert_eq!(valid("out_of_hours_message", json!("")), json!(""));
    assert_eq!(
        valid("auto_resolve_message", json!("Linha 1\nLinha 2")),
        json!("Linha 1\nLinha 2")
    );
    assert_eq!(
        invalid_reason("reject_call_message", json!("é".repeat(1001))),
        "must be at most 1000 characters, got 1001"
    );
    assert_eq!(
        invalid_reason("reject_call_message", json!("a\u{0}b")),
        "must not contain control characters"
    );
    assert_eq!(invalid_reason("smtp_host", json!(false)), "must be a text");
    assert_eq!(
        valid("smtp_host", json!(" smtp.example.com ")),
        json!("smtp.example.com")
    );
    assert!(invalid_reason("smtp_host", json!("smtp example.com")).contains("without spaces"));
}

#[test]
fn refs_must_exist_in_the_tenant_or_be_null() {
    assert_eq!(valid("active_bot_flow", json!(7)), json!(7));
    assert_eq!(valid("active_bot_flow", json!(null)), json!(null));
    assert_eq!(
        invalid_reason("active_bot_flow", json!(8)),
        "flow 8 does not exist in this tenant"
    );
    assert_eq!(
        invalid_reason("active_bot_flow", json!("7")),
        "must be a flow id or null"
    );
    assert_eq!(
        invalid_reason("active_bot_flow", json!(-7)),
        "must be a flow id or null"
    );
    assert_eq!(valid("designated_admin", json!(3)), json!(3));
    assert_eq!(valid("designated_admin", json!(null)), json!(null));
    assert_eq!(
        invalid_reason("designated_admin", json!(4)),
        "user 4 is not an admin of this tenant"
    );
}

#[test]
fn secrets_come_back_for_encryption_or_as_null_to_clear() {
    assert_eq!(
        valid("smtp_password", json!("s3cr3t pass")),
        json!("s3cr3t pass")
    );
    assert_eq!(valid("smtp_password", json!("")), json!(null));
    assert_eq!(valid("smtp_password", json!(null)), json!(null));
    assert_eq!(
        invalid_reason("smtp_password", json!(1234)),
        "must be a string, or null to remove it"
    );
    assert!(find("smtp_password").is_some_and(SettingDef::is_secret));
}

#[test]
fn send_delay_min_may_not_exceed_the_current_max() {
    let current = Settings::default();
    let error = validate_with("send_delay_min_ms", &json!(6000), &current, &Tenant).unwrap_err();
    let SettingError::Invalid { key, reason } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(key, "send_delay_min_ms");
    assert!(
        reason.contains("6000") && reason.contains("send_delay_max_ms (5000)"),
        "{reason}"
    );
    assert!(
        reason.contains("send_delay_min_ms must not exceed send_delay_max_ms"),
        "{reason}"
    );

    let error = validate_with("send_delay_max_ms", &json!(1000), &current, &Tenant).unwrap_err();
    let SettingError::Invalid { key, reason } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(key, "send_delay_max_ms");
    assert!(reason.contains("send_delay_min_ms (2000)"), "{reason}");

    assert_eq!(
        validate_with("send_delay_min_ms", &json!(5000), &current, &Tenant),
        Ok(json!(5000))
    );
    assert_eq!(
        validate_with("send_delay_max_ms", &json!(2000), &current, &Tenant),
        Ok(json!(2000))
    );
    let raised = Settings {
        send_delay_max_ms: 10_000,
        ..Settings::default()
    };
    assert_eq!(
        validate_with("send_delay_min_ms", &json!(6000), &raised, &Tenant),
        Ok(json!(6000))
    );
    // The plain checks still come first.
    assert!(matches!(
        validate_with("nope", &json!(1), &current, &Tenant),
        Err(SettingError::UnknownKey(_))
    ));
}

#[test]
fn connection_send_delays_follow_the_same_rule() {
    assert_eq!(check_send_delays(0, 0), Ok(()));
    assert_eq!(check_send_delays(2000, 60_000), Ok(()));
    assert_eq!(
        check_send_delays(-1, 10).unwrap_err().field,
        "send_delay_min_ms"
    );
    assert_eq!(
        check_send_delays(10, 60_001).unwrap_err().field,
        "send_delay_max_ms"
    );
    let error = check_send_delays(3000, 2000).unwrap_err();
    assert_eq!(error.field, "send_delay_min_ms");
    assert!(
        error.message.contains("send_delay_max_ms (2000)"),
        "{}",
        error.message
    );
}

#[test]
fn default_settings_are_the_registry_defaults() {
    let settings = Settings::default();
    for def in registry() {
        let expected = if def.is_secret() {
            json!(false)
        } else {
            def.default_value()
        };
        assert_eq!(settings.value(def.key), Some(expected), "{}", def.key);
    }
    assert_eq!(settings.value("nope"), None);
    assert_eq!(settings.timezone, chrono_tz::America::Sao_Paulo);
    assert_eq!(settings.business_hours, WeeklySchedule::always_open());
    assert_eq!(settings.smtp_security, SmtpSecurity::StartTls);
    assert_eq!(settings.feature_controls, FeatureControls::default());
    assert!(!settings.smtp_password_set);
    assert_eq!(settings.active_bot_flow, None);
    assert!(settings.order_by_last_message);
}

/// A valid value that differs from the default, per kind.
fn sample(def: &SettingDef) -> Value {
    match def.kind {
        SettingKind::Bool => json!(def.default != SettingDefault::Bool(true)),
        // One step from the default keeps the cadence pair in order.
        SettingKind::Int { min, max } => match def.default {
            SettingDefault::Int(default) if default < max => json!(default + 1),
            _ => json!(min),
        },
        SettingKind::Text { .. } => json!("x"),
        SettingKind::Enum(options) => json!(options[0]),
        SettingKind::Set(options) => json!(options),
        SettingKind::PhoneList => json!(["+5511987654321"]),
        SettingKind::FlowRef => json!(7),
        SettingKind::UserRef => json!(3),
        SettingKind::Timezone => json!("Europe/Lisbon"),
        SettingKind::Schedule => {
            json!({"days": {"sat": [{"start": "09:00", "end": "13:00"}]}, "holidays": ["2026-12-25"]})
        }
        SettingKind::Email => json!("avisos@example.com"),
        SettingKind::Secret => json!("ciphertext"),
    }
}

#[test]
fn every_key_reaches_its_typed_field() {
    for def in registry() {
        let value = sample(def);
        let stored = validate(def.key, &value, &Tenant).unwrap_or_else(|error| panic!("{error}"));
        let (settings, ignored) =
            Settings::from_overrides_reporting(&[(def.key.to_owned(), stored.clone())]);
        assert!(ignored.is_empty(), "{}: {ignored:?}", def.key);
        let expected = if def.is_secret() { json!(true) } else { stored };
        assert_eq!(
            settings.value(def.key),
            Some(expected.clone()),
            "{}",
            def.key
        );
        assert_ne!(
            Settings::default().value(def.key),
            Some(expected),
            "{}: sample equals default",
            def.key
        );
    }
}

#[test]
fn from_overrides_applies_stored_values_and_ignores_the_rest() {
    let overrides = vec![
        ("hide_others_tickets".to_owned(), json!(true)),
        ("tickets_page_size".to_owned(), json!(100)),
        ("blocked_numbers".to_owned(), json!(["+5511987654321"])),
        ("feature_controls".to_owned(), json!(["spy"])),
        ("active_bot_flow".to_owned(), json!(12)),
        ("timezone".to_owned(), json!("America/Manaus")),
        ("smtp_security".to_owned(), json!("tls")),
        (
            "smtp_password".to_owned(),
            json!("bm9uY2U6Y2lwaGVydGV4dA=="),
        ),
        ("a_setting_from_an_older_version".to_owned(), json!(1)),
        ("chat_messages_page_size".to_owned(), json!(100_000)),
        ("reopen_window_minutes".to_owned(), json!("soon")),
        ("sound_notifications".to_owned(), json!(false)),
        ("sound_notifications".to_owned(), json!(true)),
    ];
    let (settings, ignored) = Settings::from_overrides_reporting(&overrides);
    assert!(settings.hide_others_tickets);
    assert_eq!(settings.tickets_page_size, 100);
    assert_eq!(settings.blocked_numbers, ["+5511987654321"]);
    assert_eq!(
        settings.feature_controls,
        FeatureControls {
            spy: true,
            force_close: false
        }
    );
    assert_eq!(settings.active_bot_flow, Some(FlowId(12)));
    assert_eq!(settings.timezone, chrono_tz::America::Manaus);
    assert_eq!(settings.smtp_security, SmtpSecurity::Tls);
    assert!(settings.smtp_password_set);
    assert!(
        settings.sound_notifications,
        "the last value of a repeated key wins"
    );
    assert_eq!(settings.chat_messages_page_size, 50);
    assert_eq!(settings.reopen_window_minutes, 120);
    assert_eq!(
        ignored,
        [
            "a_setting_from_an_older_version",
            "chat_messages_page_size",
            "reopen_window_minutes"
        ]
    );
    assert_eq!(Settings::from_overrides(&overrides), settings);
    assert_eq!(Settings::from_overrides(&[]), Settings::default());
}

#[test]
fn from_overrides_resets_send_delays_stored_out_of_order() {
    let overrides = vec![
        ("send_delay_min_ms".to_owned(), json!(9000)),
        ("send_delay_max_ms".to_owned(), json!(8000)),
    ];
    let (settings, ignored) = Settings::from_overrides_reporting(&overrides);
    assert_eq!(
        (settings.send_delay_min_ms, settings.send_delay_max_ms),
        (2000, 5000)
    );
    assert_eq!(ignored, ["send_delay_min_ms", "send_delay_max_ms"]);
    let in_order = vec![
        ("send_delay_min_ms".to_owned(), json!(0)),
        ("send_delay_max_ms".to_owned(), json!(0)),
    ];
    let settings = Settings::from_overrides(&in_order);
    assert_eq!(
        (settings.send_delay_min_ms, settings.send_delay_max_ms),
        (0, 0)
    );
}

#[test]
fn secret_flag_follows_what_the_store_keeps() {
    let mut settings = Settings::default();
    assert!(settings.apply_override("smtp_password", &json!(true)));
    assert!(settings.smtp_password_set);
    assert!(settings.apply_override("smtp_password", &json!("")));
    assert!(!settings.smtp_password_set);
    assert!(settings.apply_override("smtp_password", &json!("ciphertext")));
    assert!(settings.apply_override("smtp_password", &json!(null)));
    assert!(!settings.smtp_password_set);
    assert!(!settings.apply_override("smtp_password", &json!(5)));
}

#[test]
fn locale_parsing_defaults_to_pt_br() {
    assert_eq!(Locale::parse("pt-BR"), Locale::PtBr);
    assert_eq!(Locale::parse("pt"), Locale::PtBr);
    assert_eq!(Locale::parse("en"), Locale::En);
    assert_eq!(Locale::parse("EN-us"), Locale::En);
    assert_eq!(Locale::parse("en_GB"), Locale::En);
    assert_eq!(Locale::parse("en-US,en;q=0.9,pt;q=0.8"), Locale::En);
    assert_eq!(Locale::parse("pt-BR,en;q=0.5"), Locale::PtBr);
    assert_eq!(Locale::parse("fr"), Locale::PtBr);
    assert_eq!(Locale::parse(""), Locale::PtBr);
    assert_eq!(Locale::default(), Locale::PtBr);
    assert_eq!(
        serde_json::to_value(Locale::PtBr).ok(),
        Some(json!("pt-BR"))
    );
    assert_eq!(Locale::En.to_string(), "en");
}

fn int_keys() -> Vec<(&'static str, i64, i64)> {
    registry()
        .iter()
        .filter_map(|def| match def.kind {
            SettingKind::Int { min, max } => Some((def.key, min, max)),
            _ => None,
        })
        .collect()
}

proptest! {
    #[test]
    fn an_int_validates_iff_within_its_range(index in 0usize..64, number in any::<i64>()) {
        let keys = int_keys();
        let (key, min, max) = keys[index % keys.len()];
        let result = validate(key, &json!(number), &Tenant);
        if (min..=max).contains(&number) {
            prop_assert_eq!(result, Ok(json!(number)));
        } else {
            prop_assert!(matches!(result, Err(SettingError::Invalid { .. })), "{} = {} accepted", key, number);
        }
    }

    #[test]
    fn an_int_near_the_bounds_validates_iff_within_its_range(index in 0usize..64, offset in -3i64..=3, upper in any::<bool>()) {
        let keys = int_keys();
        let (key, min, max) = keys[index % keys.len()];
        let number = if upper { max + offset } else { min + offset };
        let accepted = validate(key, &json!(number), &Tenant).is_ok();
        prop_assert_eq!(accepted, (min..=max).contains(&number), "{} = {}", key, number);
    }
}
