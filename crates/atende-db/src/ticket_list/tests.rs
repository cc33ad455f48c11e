use super::*;
use atende_domain::Profile;
use atende_domain::visibility::VisibilitySettings;

const TENANT: TenantId = TenantId(7);
const ME: UserId = UserId(3);

fn plan(profile: Profile, queues: &[i64], settings: VisibilitySettings) -> Plan {
    let viewer = Viewer {
        user_id: ME,
        profile,
        queue_ids: queues.iter().copied().map(QueueId).collect(),
    };
    Plan::for_viewer(&viewer, &settings, true)
}

fn defaults() -> VisibilitySettings {
    // The registry's defaults that matter here: groups are shown to all.
    VisibilitySettings {
        show_groups_to_all: true,
        ..VisibilitySettings::default()
    }
}

fn scope(statuses: &[TicketStatus], group: Option<bool>) -> Scope {
    Scope {
        statuses: statuses.to_vec(),
        group,
        bot: None,
    }
}

fn page_text(plan: &Plan, tenant_queues: &[QueueId], scope: &Scope, filter: &Filter) -> String {
    let vis = Visibility {
        plan,
        tenant_queue_ids: tenant_queues,
    };
    let request = PageRequest {
        scope,
        filter,
        sort: SortKey::LastInbound,
        after: None,
        limit: 41,
    };
    page_sql_text(TENANT, vis, &request)
}

fn arms(text: &str) -> usize {
    text.matches("SELECT t.id AS id").count()
}

#[test]
fn an_agents_open_tab_reads_one_arm_per_status_for_their_own_and_per_queue() {
    let plan = plan(Profile::User, &[1, 2], defaults());
    let open = scope(&[TicketStatus::Open, TicketStatus::Paused], Some(false));
    let text = page_text(&plan, &[], &open, &Filter::default());
    // (mine + queue 1 + queue 2) × (open, paused); the "groups for all" branch cannot hold here.
    assert_eq!(arms(&text), 6, "{text}");
    assert!(!text.contains("is_group = TRUE"), "{text}");
    assert_eq!(text.matches("t.owner_id = $").count(), 2, "{text}");
    assert!(
        text.contains("ORDER BY COALESCE(t.last_inbound_at, t.created_at) DESC, t.id DESC LIMIT")
    );
}

#[test]
fn a_branch_no_column_narrows_is_read_queue_by_queue_and_without_queue() {
    let plan = plan(Profile::Admin, &[], defaults());
    let queues = [QueueId(1), QueueId(2), QueueId(3)];
    let pending = scope(&[TicketStatus::Pending], Some(false));
    let text = page_text(&plan, &queues, &pending, &Filter::default());
    assert_eq!(arms(&text), 4, "{text}");
    assert_eq!(text.matches("t.queue_id IS NULL").count(), 1, "{text}");
    assert!(needs_tenant_queues(&plan, &pending, &Filter::default()));
    let agent = super::tests::plan(Profile::User, &[1], defaults());
    assert!(
        !needs_tenant_queues(&agent, &pending, &Filter::default()),
        "an agent's branches that can hold outside the Groups tab seek on queue or owner"
    );
    let groups = scope(&[TicketStatus::Open], Some(true));
    assert!(!needs_tenant_queues(&plan, &groups, &Filter::default()));
}

#[test]
fn a_queue_or_owner_filter_reads_one_arm_per_branch() {
    let plan = plan(Profile::Admin, &[], defaults());
    let queues = [QueueId(1), QueueId(2)];
    let open = scope(&[TicketStatus::Open], Some(false));
    let filter = Filter {
        queue_id: Some(QueueId(2)),
        ..Filter::default()
    };
    assert_eq!(arms(&page_text(&plan, &queues, &open, &filter)), 1);
    let filter = Filter {
        owner_id: Some(UserId(9)),
        ..Filter::default()
    };
    assert_eq!(arms(&page_text(&plan, &queues, &open, &filter)), 1);
}

#[test]
fn the_groups_tab_stays_on_the_group_index() {
    let plan = plan(Profile::User, &[1], VisibilitySettings::default());
    let groups = scope(&[TicketStatus::Open], Some(true));
    let text = page_text(&plan, &[], &groups, &Filter::default());
    assert!(text.contains("+t.owner_id = $"), "{text}");
    assert!(text.contains("+t.queue_id IN ($"), "{text}");
    assert!(text.contains("t.is_group = TRUE"), "{text}");
}

#[test]
fn hidden_old_tickets_bound_only_the_closed_arms() {
    let plan = plan(Profile::Admin, &[], defaults());
    let everything = scope(&[TicketStatus::Open, TicketStatus::Closed], None);
    let filter = Filter {
        closed_since: Some(1_000),
        ..Filter::default()
    };
    let text = page_text(&plan, &[], &everything, &filter);
    assert_eq!(arms(&text), 2, "{text}");
    assert_eq!(text.matches("t.created_at) >= $").count(), 1, "{text}");
}

#[test]
fn counter_arms_leave_out_what_earlier_branches_counted() {
    let plan = plan(Profile::User, &[1, 2], defaults());
    let pending = scope(&[TicketStatus::Pending], Some(false));
    let sql = counts_sql(TENANT, &plan, &[pending], 100).map(|s| s.text_with_placeholders());
    let text = sql.unwrap_or_default();
    // Mine, then my queues' tickets that are not mine.
    assert_eq!(text.matches("SELECT 1 AS one").count(), 2, "{text}");
    assert!(
        text.contains("AND NOT ((t.owner_id IS NOT NULL AND t.owner_id = $"),
        "{text}"
    );
    assert!(text.contains("t.queue_id IN ($"), "{text}");
    assert!(text.contains("t.unread > 0"), "{text}");
}

#[test]
fn a_counter_arm_an_earlier_branch_covers_is_dropped() {
    // Closed shown to all: the closed tab's first branch already admits everything there.
    let settings = VisibilitySettings {
        show_closed_to_all: true,
        ..VisibilitySettings::default()
    };
    let plan = plan(Profile::User, &[1], settings);
    let closed = scope(&[TicketStatus::Closed], Some(false));
    let text = counts_sql(TENANT, &plan, &[closed], 100)
        .map(|s| s.text_with_placeholders())
        .unwrap_or_default();
    assert_eq!(
        text.matches("SELECT 1 AS one").count(),
        2,
        "mine, then all closed not mine: {text}"
    );
}

#[test]
fn negated_facts_are_never_null() {
    let viewer = Viewer {
        user_id: ME,
        profile: Profile::User,
        queue_ids: vec![QueueId(1)],
    };
    let mut sql = Sql::default();
    and_literal(
        &mut sql,
        TENANT,
        Literal::not(Fact::QueueInViewers),
        &viewer,
        Form::Seek,
    );
    assert_eq!(
        sql.text_with_placeholders(),
        " AND NOT ((t.queue_id IS NOT NULL AND t.queue_id IN ($1)))"
    );
}

#[test]
fn like_patterns_escape_wildcards() {
    assert_eq!(like_pattern(r"50%_a\b"), r"%50\%\_a\\b%");
}
