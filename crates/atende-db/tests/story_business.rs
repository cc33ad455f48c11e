//! Story of the business repositories (queues, contacts, connections, catalogues, tickets,
//! messages, inbound events), run on SQLite and, when `TEST_DATABASE_URL` is set, on PostgreSQL.
//! Two tenants throughout: every call with the other tenant's id must fail as if the row did
//! not exist, and every reference into the other tenant must be refused naming the field.

use atende_db::connections::{self, ConnectionPatch, NewConnection};
use atende_db::contacts::{self, ContactFilter, ContactPatch, NewContact};
use atende_db::demands::{self, DemandPatch, NewDemand};
use atende_db::flows::{self, FlowPatch, NewFlow};
use atende_db::inbound_events::{self, RecordOutcome};
use atende_db::messages::{self, NewMessage};
use atende_db::queues::{self, NewQueue, QueuePatch};
use atende_db::quick_replies::{self, NewQuickReply, QuickReplyPatch};
use atende_db::tags::{self, NewTag, TagPatch};
use atende_db::templates::{self, NewTemplate};
use atende_db::tickets::{self, NewTicket};
use atende_db::users::{self, NewUser};
use atende_db::{Db, DbError, tenants};
use atende_domain::{
    ChannelKind, ConnectionId, ConnectionStatus, ContactId, FlowId, InboundOutcome, MessageAuthor,
    MessageDirection, MessageId, MessageKind, MessageStatus, NameSource, Profile, QueueId, TagId,
    TenantId, TicketId, TicketStatus, Timestamp, UserId,
};
use serde_json::json;
use std::fmt::Debug;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::test]
async fn business_story() -> Result {
    let mut failures = Vec::new();
    for store in atende_db::testing::TestDb::all().await? {
        let started = std::time::Instant::now();
        if let Err(error) = story(&store.db).await {
            failures.push(format!("{}: {error}", store.name));
        }
        eprintln!(
            "{}: business story took {:?}",
            store.name,
            started.elapsed()
        );
        store.cleanup().await;
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}

/// Two tenants: `a` holds the story, `b` holds the rows `a` must not reach.
struct World {
    a: TenantId,
    b: TenantId,
    admin: UserId,
    agent: UserId,
    /// A user of tenant `b`.
    stranger: UserId,
}

struct Catalogue {
    sales: QueueId,
    support: QueueId,
    b_queue: QueueId,
    tag: TagId,
    b_tag: TagId,
    flow: FlowId,
    b_flow: FlowId,
}

async fn story(db: &Db) -> Result {
    let world = world(db).await?;
    let catalogue = catalogue_story(db, &world).await?;
    let (web, whatsapp, b_connection) = connection_story(db, &world, &catalogue).await?;
    template_story(db, &world, whatsapp, b_connection).await?;
    let (jose, maria, b_contact) = contact_story(db, &world, &catalogue).await?;
    let ticket = ticket_story(db, &world, &catalogue, web, jose, b_contact, b_connection).await?;
    message_story(db, &world, &catalogue, ticket, web, whatsapp, jose, maria).await?;
    merge_story(db, &world, &catalogue, web, jose, maria).await?;
    inbound_story(db, &world, web, whatsapp, b_connection).await?;
    deletion_story(db, &world, &catalogue, web, jose).await?;
    Ok(())
}

fn not_found<T: Debug>(result: std::result::Result<T, DbError>) -> bool {
    matches!(result, Err(DbError::NotFound))
}

fn conflict<T: Debug>(result: std::result::Result<T, DbError>) -> bool {
    matches!(result, Err(DbError::Conflict { .. }))
}

#[track_caller]
fn assert_unknown<T: Debug>(result: std::result::Result<T, DbError>, field: &str, id: i64) {
    match result {
        Err(DbError::UnknownReference {
            field: got,
            id: got_id,
        }) => {
            assert_eq!((got, got_id), (field, id), "unknown reference")
        }
        other => panic!("expected UnknownReference {{ {field}: {id} }}, got {other:?}"),
    }
}

async fn world(db: &Db) -> Result<World> {
    let a = tenants::platform_create(db, "acme", "Acme").await?.id;
    let b = tenants::platform_create(db, "beta", "Beta").await?.id;
    let user = |email: &str, name: &str, profile| NewUser {
        email: email.into(),
        name: name.into(),
        password_hash: "x".into(),
        profile,
        ..NewUser::default()
    };
    let admin = users::create(db, a, &user("ana@acme.test", "Ana", Profile::Admin))
        .await?
        .id;
    let agent = users::create(db, a, &user("bruno@acme.test", "Bruno", Profile::User))
        .await?
        .id;
    let stranger = users::create(db, b, &user("carla@beta.test", "Carla", Profile::User))
        .await?
        .id;
    Ok(World {
        a,
        b,
        admin,
        agent,
        stranger,
    })
}

fn new_queue(name: &str) -> NewQueue {
    NewQueue {
        name: name.into(),
        color: "#336699".into(),
        greeting: format!("Welcome to {name}"),
        absence_message: "We are closed".into(),
        business_hours: None,
    }
}

async fn catalogue_story(db: &Db, w: &World) -> Result<Catalogue> {
    let (a, b) = (w.a, w.b);

    // Queues.
    let hours = json!({"mon": [["08:00", "12:00"], ["13:00", "18:00"]]});
    let sales = queues::create(
        db,
        a,
        &NewQueue {
            business_hours: Some(hours.clone()),
            ..new_queue("Vendas")
        },
    )
    .await?;
    assert_eq!((sales.tenant_id, sales.name.as_str()), (a, "Vendas"));
    assert_eq!(sales.business_hours, Some(hours));
    assert_eq!(sales.greeting, "Welcome to Vendas");
    let support = queues::create(db, a, &new_queue("Suporte")).await?;
    assert!(
        conflict(queues::create(db, a, &new_queue("Vendas")).await),
        "queue name is unique per tenant"
    );
    let b_queue = queues::create(db, b, &new_queue("Vendas")).await?;
    assert_eq!(queues::get(db, a, sales.id).await?, sales);
    assert!(not_found(queues::get(db, a, b_queue.id).await));
    let names: Vec<String> = queues::list(db, a)
        .await?
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert_eq!(names, ["Suporte", "Vendas"]);
    assert_eq!(
        (queues::count(db, a).await?, queues::count(db, b).await?),
        (2, 1)
    );
    assert_eq!(
        queues::find_by_name(db, a, "Suporte").await?.map(|q| q.id),
        Some(support.id)
    );
    assert_eq!(queues::find_by_name(db, a, "Nope").await?, None);
    let patched = queues::update(
        db,
        a,
        sales.id,
        &QueuePatch {
            color: Some("#ff0000".into()),
            business_hours: Some(None),
            ..QueuePatch::default()
        },
    )
    .await?;
    assert_eq!(
        (patched.color.as_str(), patched.business_hours.clone()),
        ("#ff0000", None)
    );
    assert_eq!(
        (patched.name.as_str(), patched.greeting.as_str()),
        ("Vendas", "Welcome to Vendas")
    );
    assert!(
        conflict(
            queues::update(
                db,
                a,
                sales.id,
                &QueuePatch {
                    name: Some("Suporte".into()),
                    ..QueuePatch::default()
                }
            )
            .await
        ),
        "renaming onto another queue's name"
    );
    assert!(not_found(
        queues::update(db, a, b_queue.id, &QueuePatch::default()).await
    ));

    queues::set_user_queues(db, a, w.agent, &[support.id, sales.id, sales.id]).await?;
    assert_eq!(
        queues::queue_ids_of_user(db, a, w.agent).await?,
        vec![sales.id, support.id]
    );
    assert_eq!(
        users::get(db, a, w.agent).await?.queue_ids,
        vec![sales.id, support.id]
    );
    assert_unknown(
        queues::set_user_queues(db, a, w.agent, &[sales.id, b_queue.id]).await,
        "queue_ids",
        b_queue.id.0,
    );
    assert_eq!(
        queues::queue_ids_of_user(db, a, w.agent).await?.len(),
        2,
        "a refused change changes nothing"
    );
    assert!(not_found(
        queues::set_user_queues(db, a, w.stranger, &[sales.id]).await
    ));
    queues::set_user_queues(db, a, w.admin, &[sales.id]).await?;
    assert_eq!(
        queues::queue_ids_of_user(db, a, w.admin).await?,
        vec![sales.id]
    );
    assert!(
        queues::queue_ids_of_user(db, a, w.stranger)
            .await?
            .is_empty()
    );

    let doomed = queues::create(db, a, &new_queue("Temporária")).await?;
    queues::set_user_queues(db, a, w.admin, &[sales.id, doomed.id]).await?;
    assert!(not_found(queues::delete(db, a, b_queue.id).await));
    assert!(
        queues::get(db, b, b_queue.id).await.is_ok(),
        "the other tenant's queue survives"
    );
    queues::delete(db, a, doomed.id).await?;
    assert!(not_found(queues::get(db, a, doomed.id).await));
    assert!(not_found(queues::delete(db, a, doomed.id).await));
    assert_eq!(
        queues::queue_ids_of_user(db, a, w.admin).await?,
        vec![sales.id],
        "membership goes with the queue"
    );

    // Tags.
    let vip = tags::create(
        db,
        a,
        &NewTag {
            name: "VIP".into(),
            color: "#gold".into(),
        },
    )
    .await?;
    assert_eq!(
        (vip.tenant_id, vip.name.as_str(), vip.color.as_str()),
        (a, "VIP", "#gold")
    );
    assert!(conflict(
        tags::create(
            db,
            a,
            &NewTag {
                name: "VIP".into(),
                color: "#000".into()
            }
        )
        .await
    ));
    let lead = tags::create(
        db,
        a,
        &NewTag {
            name: "Lead".into(),
            color: "#0f0".into(),
        },
    )
    .await?;
    let b_tag = tags::create(
        db,
        b,
        &NewTag {
            name: "VIP".into(),
            color: "#000".into(),
        },
    )
    .await?;
    assert_eq!(tags::get(db, a, vip.id).await?, vip);
    assert!(not_found(tags::get(db, a, b_tag.id).await));
    assert_eq!(tags::list(db, a).await?, vec![lead.clone(), vip.clone()]);
    let renamed = tags::update(
        db,
        a,
        lead.id,
        &TagPatch {
            name: Some("Prospect".into()),
            color: None,
        },
    )
    .await?;
    assert_eq!(
        (renamed.name.as_str(), renamed.color.as_str()),
        ("Prospect", "#0f0")
    );
    assert!(conflict(
        tags::update(
            db,
            a,
            lead.id,
            &TagPatch {
                name: Some("VIP".into()),
                color: None
            }
        )
        .await
    ));
    assert!(not_found(
        tags::update(db, a, b_tag.id, &TagPatch::default()).await
    ));
    assert!(not_found(tags::delete(db, a, b_tag.id).await));
    tags::delete(db, a, lead.id).await?;
    assert!(not_found(tags::get(db, a, lead.id).await));
    assert!(not_found(tags::delete(db, a, lead.id).await));

    // Demands.
    let sold = demands::create(
        db,
        a,
        &NewDemand {
            name: "Venda realizada".into(),
            active: true,
        },
    )
    .await?;
    assert!(sold.active);
    assert!(conflict(
        demands::create(
            db,
            a,
            &NewDemand {
                name: "Venda realizada".into(),
                active: false
            }
        )
        .await
    ));
    let b_demand = demands::create(
        db,
        b,
        &NewDemand {
            name: "Venda realizada".into(),
            active: true,
        },
    )
    .await?;
    let spam = demands::create(
        db,
        a,
        &NewDemand {
            name: "Spam".into(),
            active: true,
        },
    )
    .await?;
    assert_eq!(demands::get(db, a, sold.id).await?, sold);
    assert!(not_found(demands::get(db, a, b_demand.id).await));
    let off = demands::update(
        db,
        a,
        spam.id,
        &DemandPatch {
            active: Some(false),
            name: None,
        },
    )
    .await?;
    assert_eq!((off.name.as_str(), off.active), ("Spam", false));
    assert_eq!(demands::list(db, a).await?, vec![off.clone(), sold.clone()]);
    assert!(conflict(
        demands::update(
            db,
            a,
            spam.id,
            &DemandPatch {
                name: Some("Venda realizada".into()),
                active: None
            }
        )
        .await
    ));
    assert!(not_found(
        demands::update(db, a, b_demand.id, &DemandPatch::default()).await
    ));
    assert!(not_found(demands::delete(db, a, b_demand.id).await));
    demands::delete(db, a, spam.id).await?;
    assert_eq!(demands::list(db, a).await?, vec![sold]);

    // Quick replies.
    let hello = quick_replies::create(
        db,
        a,
        &NewQuickReply {
            shortcut: "oi".into(),
            body: "Olá! Como posso ajudar?".into(),
            user_id: None,
        },
    )
    .await?;
    let bye = quick_replies::create(
        db,
        a,
        &NewQuickReply {
            shortcut: "tchau".into(),
            body: "Até logo".into(),
            user_id: Some(w.agent),
        },
    )
    .await?;
    assert_eq!(bye.user_id, Some(w.agent));
    assert!(conflict(
        quick_replies::create(
            db,
            a,
            &NewQuickReply {
                shortcut: "oi".into(),
                body: "again".into(),
                user_id: None
            }
        )
        .await
    ));
    assert_unknown(
        quick_replies::create(
            db,
            a,
            &NewQuickReply {
                shortcut: "x".into(),
                body: "x".into(),
                user_id: Some(w.stranger),
            },
        )
        .await,
        "user_id",
        w.stranger.0,
    );
    let b_reply = quick_replies::create(
        db,
        b,
        &NewQuickReply {
            shortcut: "oi".into(),
            body: "b".into(),
            user_id: None,
        },
    )
    .await?;
    assert_eq!(
        quick_replies::list(db, a, None).await?,
        vec![hello.clone(), bye.clone()]
    );
    assert_eq!(
        quick_replies::list(db, a, Some(w.admin)).await?,
        vec![hello.clone()]
    );
    assert_eq!(
        quick_replies::list(db, a, Some(w.agent)).await?,
        vec![hello.clone(), bye.clone()]
    );
    assert_eq!(quick_replies::get(db, a, bye.id).await?, bye);
    assert!(not_found(quick_replies::get(db, a, b_reply.id).await));
    let public = quick_replies::update(
        db,
        a,
        bye.id,
        &QuickReplyPatch {
            body: Some("Tchau!".into()),
            user_id: Some(None),
            shortcut: None,
        },
    )
    .await?;
    assert_eq!(
        (
            public.shortcut.as_str(),
            public.body.as_str(),
            public.user_id
        ),
        ("tchau", "Tchau!", None)
    );
    assert_eq!(quick_replies::list(db, a, Some(w.admin)).await?.len(), 2);
    assert_unknown(
        quick_replies::update(
            db,
            a,
            bye.id,
            &QuickReplyPatch {
                user_id: Some(Some(w.stranger)),
                ..QuickReplyPatch::default()
            },
        )
        .await,
        "user_id",
        w.stranger.0,
    );
    assert!(conflict(
        quick_replies::update(
            db,
            a,
            bye.id,
            &QuickReplyPatch {
                shortcut: Some("oi".into()),
                ..QuickReplyPatch::default()
            }
        )
        .await
    ));
    assert!(not_found(
        quick_replies::update(db, a, b_reply.id, &QuickReplyPatch::default()).await
    ));
    assert!(not_found(quick_replies::delete(db, a, b_reply.id).await));
    quick_replies::delete(db, a, bye.id).await?;
    assert_eq!(quick_replies::list(db, a, None).await?, vec![hello]);

    // Flows.
    let graph_v1 = json!({"nodes": [{"id": "start", "type": "send", "text": "Oi"}], "edges": []});
    let graph_v2 =
        json!({"nodes": [{"id": "start", "type": "menu"}], "edges": [{"from": "start"}]});
    let flow = flows::create(
        db,
        a,
        &NewFlow {
            name: "Boas-vindas".into(),
            active: true,
            graph: graph_v1.clone(),
        },
    )
    .await?;
    assert_eq!(
        (flow.version, flow.active, flow.graph.clone()),
        (1, true, graph_v1.clone())
    );
    let b_flow = flows::create(
        db,
        b,
        &NewFlow {
            name: "B".into(),
            active: false,
            graph: json!({}),
        },
    )
    .await?;
    assert!(flows::exists(db, a, flow.id).await?);
    assert!(!flows::exists(db, a, b_flow.id).await?);
    assert!(not_found(flows::get(db, a, b_flow.id).await));
    let renamed = flows::update(
        db,
        a,
        flow.id,
        &FlowPatch {
            name: Some("Welcome".into()),
            ..FlowPatch::default()
        },
    )
    .await?;
    assert_eq!(
        (renamed.name.as_str(), renamed.version),
        ("Welcome", 1),
        "a rename keeps the version"
    );
    let bumped = flows::update(
        db,
        a,
        flow.id,
        &FlowPatch {
            graph: Some(graph_v2.clone()),
            active: Some(false),
            name: None,
        },
    )
    .await?;
    assert_eq!(
        (bumped.version, bumped.active, bumped.graph.clone()),
        (2, false, graph_v2.clone())
    );
    assert_eq!(flows::get(db, a, flow.id).await?, bumped);
    assert_eq!(flows::get_version(db, a, flow.id, 1).await?, graph_v1);
    assert_eq!(flows::get_version(db, a, flow.id, 2).await?, graph_v2);
    assert!(not_found(flows::get_version(db, a, flow.id, 3).await));
    assert!(not_found(flows::get_version(db, a, b_flow.id, 1).await));
    assert_eq!(flows::list(db, a).await?, vec![bumped]);
    assert!(not_found(
        flows::update(db, a, b_flow.id, &FlowPatch::default()).await
    ));
    assert!(not_found(flows::delete(db, a, b_flow.id).await));
    let doomed = flows::create(
        db,
        a,
        &NewFlow {
            name: "Old".into(),
            active: false,
            graph: json!({}),
        },
    )
    .await?;
    flows::delete(db, a, doomed.id).await?;
    assert!(!flows::exists(db, a, doomed.id).await?);
    assert!(
        not_found(flows::get_version(db, a, doomed.id, 1).await),
        "versions go with the flow"
    );

    Ok(Catalogue {
        sales: sales.id,
        support: support.id,
        b_queue: b_queue.id,
        tag: vip.id,
        b_tag: b_tag.id,
        flow: flow.id,
        b_flow: b_flow.id,
    })
}

fn new_connection(kind: ChannelKind, name: &str) -> NewConnection {
    NewConnection {
        kind,
        name: name.into(),
        default_queue_id: None,
        default_flow_id: None,
        public_key: None,
        credentials: None,
        send_delay_min_ms: None,
        send_delay_max_ms: None,
        cadence_enabled: None,
    }
}

async fn connection_story(
    db: &Db,
    w: &World,
    c: &Catalogue,
) -> Result<(ConnectionId, ConnectionId, ConnectionId)> {
    let (a, b) = (w.a, w.b);
    let web = connections::create(
        db,
        a,
        &NewConnection {
            default_queue_id: Some(c.sales),
            default_flow_id: Some(c.flow),
            public_key: Some("pk-acme".into()),
            ..new_connection(ChannelKind::Webchat, "Site")
        },
    )
    .await?;
    assert_eq!(
        (web.kind, web.status, web.has_credentials),
        (ChannelKind::Webchat, ConnectionStatus::Connected, false)
    );
    assert_eq!(
        (web.default_queue_id, web.default_flow_id),
        (Some(c.sales), Some(c.flow))
    );
    let whatsapp = connections::create(
        db,
        a,
        &NewConnection {
            credentials: Some(b"sealed-token".to_vec()),
            send_delay_min_ms: Some(1000),
            send_delay_max_ms: Some(3000),
            cadence_enabled: Some(true),
            ..new_connection(ChannelKind::WhatsappCloud, "WhatsApp")
        },
    )
    .await?;
    assert!(whatsapp.has_credentials);
    assert_eq!(
        (
            whatsapp.send_delay_min_ms,
            whatsapp.send_delay_max_ms,
            whatsapp.cadence_enabled
        ),
        (Some(1000), Some(3000), Some(true))
    );
    assert_eq!(
        connections::credentials(db, a, whatsapp.id).await?,
        Some(b"sealed-token".to_vec())
    );
    assert_eq!(connections::credentials(db, a, web.id).await?, None);
    let b_connection =
        connections::create(db, b, &new_connection(ChannelKind::Telegram, "Bot")).await?;
    assert!(not_found(
        connections::credentials(db, a, b_connection.id).await
    ));
    assert_unknown(
        connections::create(
            db,
            a,
            &NewConnection {
                default_queue_id: Some(c.b_queue),
                ..new_connection(ChannelKind::Telegram, "x")
            },
        )
        .await,
        "default_queue_id",
        c.b_queue.0,
    );
    assert_unknown(
        connections::create(
            db,
            a,
            &NewConnection {
                default_flow_id: Some(c.b_flow),
                ..new_connection(ChannelKind::Telegram, "x")
            },
        )
        .await,
        "default_flow_id",
        c.b_flow.0,
    );
    assert!(
        conflict(
            connections::create(
                db,
                b,
                &NewConnection {
                    public_key: Some("pk-acme".into()),
                    ..new_connection(ChannelKind::Webchat, "x")
                }
            )
            .await
        ),
        "public keys are unique across the platform"
    );
    assert_eq!(
        connections::platform_find_by_public_key(db, "pk-acme").await?,
        Some(web.clone())
    );
    assert_eq!(
        connections::platform_find_by_public_key(db, "pk-nope").await?,
        None
    );
    assert_eq!(connections::get(db, a, web.id).await?, web);
    assert!(not_found(connections::get(db, a, b_connection.id).await));
    assert_eq!(
        connections::list(db, a)
            .await?
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        vec![web.id, whatsapp.id]
    );

    let patched = connections::update(
        db,
        a,
        whatsapp.id,
        &ConnectionPatch {
            name: Some("WhatsApp Vendas".into()),
            default_queue_id: Some(Some(c.support)),
            send_delay_max_ms: Some(None),
            ..ConnectionPatch::default()
        },
    )
    .await?;
    assert_eq!(patched.name, "WhatsApp Vendas");
    assert_eq!(
        (
            patched.default_queue_id,
            patched.send_delay_min_ms,
            patched.send_delay_max_ms
        ),
        (Some(c.support), Some(1000), None)
    );
    assert!(
        patched.has_credentials,
        "credentials stay unless the patch names them"
    );
    assert_eq!(
        connections::credentials(db, a, whatsapp.id).await?,
        Some(b"sealed-token".to_vec())
    );
    let rotated = connections::update(
        db,
        a,
        whatsapp.id,
        &ConnectionPatch {
            credentials: Some(Some(b"new-token".to_vec())),
            ..ConnectionPatch::default()
        },
    )
    .await?;
    assert!(rotated.has_credentials);
    assert_eq!(
        connections::credentials(db, a, whatsapp.id).await?,
        Some(b"new-token".to_vec())
    );
    let cleared = connections::update(
        db,
        a,
        whatsapp.id,
        &ConnectionPatch {
            credentials: Some(None),
            cadence_enabled: Some(None),
            ..ConnectionPatch::default()
        },
    )
    .await?;
    assert_eq!(
        (cleared.has_credentials, cleared.cadence_enabled),
        (false, None)
    );
    assert_eq!(connections::credentials(db, a, whatsapp.id).await?, None);
    connections::update(
        db,
        a,
        whatsapp.id,
        &ConnectionPatch {
            credentials: Some(Some(b"sealed-token".to_vec())),
            ..ConnectionPatch::default()
        },
    )
    .await?;
    assert_unknown(
        connections::update(
            db,
            a,
            web.id,
            &ConnectionPatch {
                default_queue_id: Some(Some(c.b_queue)),
                ..ConnectionPatch::default()
            },
        )
        .await,
        "default_queue_id",
        c.b_queue.0,
    );
    assert_unknown(
        connections::update(
            db,
            a,
            web.id,
            &ConnectionPatch {
                default_flow_id: Some(Some(c.b_flow)),
                ..ConnectionPatch::default()
            },
        )
        .await,
        "default_flow_id",
        c.b_flow.0,
    );
    assert!(not_found(
        connections::update(db, a, b_connection.id, &ConnectionPatch::default()).await
    ));

    let connected =
        connections::set_status(db, a, whatsapp.id, ConnectionStatus::Connected).await?;
    assert_eq!(connected.status, ConnectionStatus::Connected);
    assert_eq!(
        connections::get(db, a, whatsapp.id).await?.status,
        ConnectionStatus::Connected
    );
    assert!(not_found(
        connections::set_status(db, a, b_connection.id, ConnectionStatus::Error).await
    ));
    assert_eq!(
        connections::get(db, b, b_connection.id).await?.status,
        ConnectionStatus::Disconnected
    );

    let spare =
        connections::create(db, a, &new_connection(ChannelKind::Instagram, "Insta")).await?;
    assert!(not_found(connections::delete(db, a, b_connection.id).await));
    connections::delete(db, a, spare.id).await?;
    assert!(not_found(connections::get(db, a, spare.id).await));
    assert!(not_found(connections::delete(db, a, spare.id).await));
    Ok((web.id, whatsapp.id, b_connection.id))
}

async fn template_story(
    db: &Db,
    w: &World,
    whatsapp: ConnectionId,
    b_connection: ConnectionId,
) -> Result {
    let a = w.a;
    let template = |language: &str, status: &str| NewTemplate {
        connection_id: whatsapp,
        name: "order_update".into(),
        language: language.into(),
        category: "UTILITY".into(),
        status: status.into(),
        components: json!([{"type": "BODY", "text": "Pedido {{1}}"}]),
    };
    let pending = templates::upsert(db, a, &template("pt_BR", "PENDING")).await?;
    assert_eq!(
        (pending.connection_id, pending.status.as_str()),
        (whatsapp, "PENDING")
    );
    let approved = templates::upsert(db, a, &template("pt_BR", "APPROVED")).await?;
    assert_eq!(
        approved.id, pending.id,
        "same connection, name and language: updated in place"
    );
    assert_eq!(approved.status, "APPROVED");
    let english = templates::upsert(db, a, &template("en_US", "APPROVED")).await?;
    assert_ne!(english.id, approved.id);
    assert_eq!(templates::get(db, a, approved.id).await?, approved);
    assert_eq!(
        templates::list(db, a, whatsapp).await?,
        vec![english.clone(), approved.clone()]
    );
    assert!(templates::list(db, w.b, whatsapp).await?.is_empty());
    assert!(not_found(templates::get(db, w.b, approved.id).await));
    assert_unknown(
        templates::upsert(
            db,
            a,
            &NewTemplate {
                connection_id: b_connection,
                ..template("pt_BR", "APPROVED")
            },
        )
        .await,
        "connection_id",
        b_connection.0,
    );
    assert!(not_found(templates::delete(db, w.b, english.id).await));
    templates::delete(db, a, english.id).await?;
    assert_eq!(templates::list(db, a, whatsapp).await?, vec![approved]);
    Ok(())
}

fn new_contact(name: &str) -> NewContact {
    NewContact {
        name: name.into(),
        name_source: NameSource::Push,
        phone: None,
        email: None,
        avatar_url: None,
        blocked: false,
        is_group: false,
        custom_fields: json!({}),
        identities: Vec::new(),
        wallet_user_ids: Vec::new(),
        tag_ids: Vec::new(),
    }
}

fn ids(contacts: &[atende_domain::Contact]) -> Vec<ContactId> {
    contacts.iter().map(|c| c.id).collect()
}

fn search(text: &str) -> ContactFilter {
    ContactFilter {
        search: Some(text.into()),
        ..ContactFilter::default()
    }
}

async fn contact_story(
    db: &Db,
    w: &World,
    c: &Catalogue,
) -> Result<(ContactId, ContactId, ContactId)> {
    let (a, b) = (w.a, w.b);
    let jose = contacts::create(
        db,
        a,
        &NewContact {
            phone: Some("+5511987654321".into()),
            identities: vec![
                (ChannelKind::WhatsappCloud, "5511987654321".into()),
                (ChannelKind::Webchat, "visitor-1".into()),
            ],
            wallet_user_ids: vec![w.agent, w.admin, w.agent],
            tag_ids: vec![c.tag],
            custom_fields: json!({"cpf": "123"}),
            ..new_contact("José da Silva")
        },
    )
    .await?;
    assert_eq!(
        jose.wallet_user_ids,
        vec![w.agent, w.admin],
        "wallet order kept, duplicates dropped"
    );
    assert_eq!(jose.tag_ids, vec![c.tag]);
    assert_eq!(jose.custom_fields, json!({"cpf": "123"}));
    assert_eq!(
        jose.identities
            .iter()
            .map(|i| (i.channel, i.external_id.as_str(), i.contact_id))
            .collect::<Vec<_>>(),
        vec![
            (ChannelKind::WhatsappCloud, "5511987654321", jose.id),
            (ChannelKind::Webchat, "visitor-1", jose.id)
        ]
    );
    assert_eq!(contacts::get(db, a, jose.id).await?, jose);
    let maria = contacts::create(
        db,
        a,
        &NewContact {
            email: Some("Maria@Example.com".into()),
            name_source: NameSource::Manual,
            identities: vec![(ChannelKind::Telegram, "777001".into())],
            ..new_contact("Maria Souza")
        },
    )
    .await?;
    assert_eq!(maria.name_source, NameSource::Manual);
    let blocked = contacts::create(
        db,
        a,
        &NewContact {
            blocked: true,
            ..new_contact("Spammer")
        },
    )
    .await?;
    let b_contact = contacts::create(
        db,
        b,
        &NewContact {
            phone: Some("+5511987654321".into()),
            identities: vec![(ChannelKind::WhatsappCloud, "5511987654321".into())],
            ..new_contact("José da Silva")
        },
    )
    .await?;
    assert_ne!(
        b_contact.id, jose.id,
        "identities are unique per tenant, not across tenants"
    );

    let before = contacts::list(db, a, &ContactFilter::default())
        .await?
        .len();
    assert!(conflict(
        contacts::create(
            db,
            a,
            &NewContact {
                identities: vec![(ChannelKind::Webchat, "visitor-1".into())],
                ..new_contact("Dup")
            }
        )
        .await
    ));
    assert_unknown(
        contacts::create(
            db,
            a,
            &NewContact {
                wallet_user_ids: vec![w.admin, w.stranger],
                ..new_contact("X")
            },
        )
        .await,
        "wallet_user_ids",
        w.stranger.0,
    );
    assert_unknown(
        contacts::create(
            db,
            a,
            &NewContact {
                tag_ids: vec![c.b_tag],
                ..new_contact("X")
            },
        )
        .await,
        "tag_ids",
        c.b_tag.0,
    );
    assert_eq!(
        contacts::list(db, a, &ContactFilter::default())
            .await?
            .len(),
        before,
        "refused creates leave nothing"
    );

    // Identity lookups stay inside the tenant.
    assert_eq!(
        contacts::find_by_identity(db, a, ChannelKind::WhatsappCloud, "5511987654321")
            .await?
            .map(|c| c.id),
        Some(jose.id)
    );
    assert_eq!(
        contacts::find_by_identity(db, b, ChannelKind::WhatsappCloud, "5511987654321")
            .await?
            .map(|c| c.id),
        Some(b_contact.id)
    );
    assert_eq!(
        contacts::find_by_identity(db, a, ChannelKind::Evolution, "5511987654321").await?,
        None
    );

    // Search: name or email substring (any case), phone or identity digits; wildcards are literal.
    assert_eq!(
        ids(&contacts::list(db, a, &search("silva")).await?),
        vec![jose.id]
    );
    assert_eq!(
        ids(&contacts::list(db, a, &search("DA SIL")).await?),
        vec![jose.id]
    );
    assert_eq!(
        ids(&contacts::list(db, a, &search("98765")).await?),
        vec![jose.id]
    );
    assert_eq!(
        ids(&contacts::list(db, a, &search("(11) 98765-4321")).await?),
        vec![jose.id]
    );
    assert_eq!(
        ids(&contacts::list(db, a, &search("777001")).await?),
        vec![maria.id]
    );
    assert_eq!(
        ids(&contacts::list(db, a, &search("maria@example")).await?),
        vec![maria.id]
    );
    assert_eq!(
        ids(&contacts::list(db, a, &search("souza")).await?),
        vec![maria.id]
    );
    assert!(contacts::list(db, a, &search("%")).await?.is_empty());
    assert!(contacts::list(db, a, &search("_")).await?.is_empty());
    assert_eq!(
        ids(&contacts::list(db, b, &search("silva")).await?),
        vec![b_contact.id]
    );
    assert_eq!(
        ids(&contacts::list(db, a, &search("  ")).await?),
        vec![jose.id, maria.id, blocked.id]
    );

    // Filters and keyset paging.
    let filter = |f: ContactFilter| async move { contacts::list(db, a, &f).await.map(|c| ids(&c)) };
    assert_eq!(
        filter(ContactFilter {
            tag_id: Some(c.tag),
            ..ContactFilter::default()
        })
        .await?,
        vec![jose.id]
    );
    assert_eq!(
        filter(ContactFilter {
            blocked: Some(true),
            ..ContactFilter::default()
        })
        .await?,
        vec![blocked.id]
    );
    assert_eq!(
        filter(ContactFilter {
            blocked: Some(false),
            ..ContactFilter::default()
        })
        .await?,
        vec![jose.id, maria.id]
    );
    assert_eq!(
        filter(ContactFilter {
            limit: 2,
            ..ContactFilter::default()
        })
        .await?,
        vec![jose.id, maria.id]
    );
    assert_eq!(
        filter(ContactFilter {
            limit: 2,
            after: Some(maria.id),
            ..ContactFilter::default()
        })
        .await?,
        vec![blocked.id]
    );
    assert!(
        filter(ContactFilter {
            after: Some(blocked.id),
            ..ContactFilter::default()
        })
        .await?
        .is_empty()
    );
    // A batched page carries every contact's own identities, wallet and tags.
    let page = contacts::list(db, a, &ContactFilter::default()).await?;
    assert_eq!(page[0], jose);
    assert_eq!(page[1], maria);

    // Update: fields, identities (kept ones keep their id), wallet and tags replaced.
    let kept_identity = jose.identities[0].clone();
    let updated = contacts::update(
        db,
        a,
        jose.id,
        &ContactPatch {
            name: Some("José Silva".into()),
            name_source: Some(NameSource::Manual),
            email: Some(Some("jose@example.com".into())),
            avatar_url: Some(Some("https://img.test/j.png".into())),
            identities: Some(vec![
                (ChannelKind::WhatsappCloud, "5511987654321".into()),
                (ChannelKind::Instagram, "ig-42".into()),
            ]),
            wallet_user_ids: Some(vec![w.admin, w.agent]),
            tag_ids: Some(Vec::new()),
            ..ContactPatch::default()
        },
    )
    .await?;
    assert_eq!(
        (updated.name.as_str(), updated.name_source),
        ("José Silva", NameSource::Manual)
    );
    assert_eq!(
        updated.phone.as_deref(),
        Some("+5511987654321"),
        "fields the patch leaves out stay"
    );
    assert_eq!(updated.email.as_deref(), Some("jose@example.com"));
    assert_eq!(updated.identities[0], kept_identity);
    assert_eq!(
        updated
            .identities
            .iter()
            .map(|i| (i.channel, i.external_id.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (ChannelKind::WhatsappCloud, "5511987654321"),
            (ChannelKind::Instagram, "ig-42")
        ]
    );
    assert_eq!(
        contacts::find_by_identity(db, a, ChannelKind::Webchat, "visitor-1").await?,
        None
    );
    assert_eq!(updated.wallet_user_ids, vec![w.admin, w.agent]);
    assert!(updated.tag_ids.is_empty());
    let cleared = contacts::update(
        db,
        a,
        jose.id,
        &ContactPatch {
            avatar_url: Some(None),
            blocked: Some(false),
            ..ContactPatch::default()
        },
    )
    .await?;
    assert_eq!(cleared.avatar_url, None);
    assert_unknown(
        contacts::update(
            db,
            a,
            jose.id,
            &ContactPatch {
                wallet_user_ids: Some(vec![w.stranger]),
                ..ContactPatch::default()
            },
        )
        .await,
        "wallet_user_ids",
        w.stranger.0,
    );
    assert_unknown(
        contacts::update(
            db,
            a,
            jose.id,
            &ContactPatch {
                tag_ids: Some(vec![c.b_tag]),
                ..ContactPatch::default()
            },
        )
        .await,
        "tag_ids",
        c.b_tag.0,
    );
    assert!(conflict(
        contacts::update(
            db,
            a,
            maria.id,
            &ContactPatch {
                identities: Some(vec![(ChannelKind::Instagram, "ig-42".into())]),
                ..ContactPatch::default()
            }
        )
        .await
    ));
    assert_eq!(
        contacts::get(db, a, maria.id).await?,
        maria,
        "a refused update changes nothing"
    );
    assert!(not_found(contacts::get(db, a, b_contact.id).await));
    assert!(not_found(
        contacts::update(db, a, b_contact.id, &ContactPatch::default()).await
    ));
    assert!(not_found(contacts::delete(db, a, b_contact.id).await));

    // Identities one by one.
    let added =
        contacts::add_identity(db, a, maria.id, ChannelKind::Evolution, "5521999990000").await?;
    assert_eq!(
        (added.contact_id, added.channel),
        (maria.id, ChannelKind::Evolution)
    );
    assert!(conflict(
        contacts::add_identity(db, a, jose.id, ChannelKind::Evolution, "5521999990000").await
    ));
    assert!(not_found(
        contacts::add_identity(db, a, b_contact.id, ChannelKind::Evolution, "1").await
    ));
    assert_eq!(contacts::get(db, a, maria.id).await?.identities.len(), 2);
    assert!(not_found(contacts::remove_identity(db, b, added.id).await));
    contacts::remove_identity(db, a, added.id).await?;
    assert!(not_found(contacts::remove_identity(db, a, added.id).await));
    assert_eq!(contacts::get(db, a, maria.id).await?.identities.len(), 1);

    // Wallet and tags.
    contacts::set_wallet(db, a, maria.id, &[w.agent, w.admin, w.agent]).await?;
    assert_eq!(
        contacts::get(db, a, maria.id).await?.wallet_user_ids,
        vec![w.agent, w.admin]
    );
    contacts::set_wallet(db, a, maria.id, &[w.admin]).await?;
    assert_eq!(
        contacts::get(db, a, maria.id).await?.wallet_user_ids,
        vec![w.admin]
    );
    assert_unknown(
        contacts::set_wallet(db, a, maria.id, &[w.stranger]).await,
        "wallet_user_ids",
        w.stranger.0,
    );
    assert!(not_found(
        contacts::set_wallet(db, a, b_contact.id, &[w.admin]).await
    ));
    contacts::set_tags(db, a, maria.id, &[c.tag]).await?;
    assert_eq!(contacts::get(db, a, maria.id).await?.tag_ids, vec![c.tag]);
    assert_unknown(
        contacts::set_tags(db, a, maria.id, &[c.b_tag]).await,
        "tag_ids",
        c.b_tag.0,
    );
    assert!(not_found(
        contacts::set_tags(db, a, b_contact.id, &[c.tag]).await
    ));
    assert_eq!(contacts::get(db, a, maria.id).await?.tag_ids, vec![c.tag]);

    contacts::delete(db, a, blocked.id).await?;
    assert!(not_found(contacts::get(db, a, blocked.id).await));
    assert!(not_found(contacts::delete(db, a, blocked.id).await));
    Ok((jose.id, maria.id, b_contact.id))
}

fn new_ticket(contact_id: ContactId, connection_id: ConnectionId) -> NewTicket {
    NewTicket {
        contact_id,
        connection_id,
        status: TicketStatus::Pending,
        owner_id: None,
        queue_id: None,
        is_group: false,
    }
}

#[allow(clippy::too_many_arguments)]
async fn ticket_story(
    db: &Db,
    w: &World,
    c: &Catalogue,
    web: ConnectionId,
    jose: ContactId,
    b_contact: ContactId,
    b_connection: ConnectionId,
) -> Result<TicketId> {
    let (a, b) = (w.a, w.b);
    let ticket = tickets::create(
        db,
        a,
        &NewTicket {
            queue_id: Some(c.sales),
            ..new_ticket(jose, web)
        },
    )
    .await?;
    assert_eq!(
        (ticket.status, ticket.owner_id, ticket.queue_id),
        (TicketStatus::Pending, None, Some(c.sales))
    );
    assert_eq!(
        (
            ticket.unread,
            ticket.last_message.as_str(),
            ticket.closed_at
        ),
        (0, "", None)
    );
    let today = Timestamp::now().to_utc().format("%Y%m%d").to_string();
    assert!(
        ticket.protocol.starts_with(&today[..6]),
        "protocol {} starts with the date",
        ticket.protocol
    );
    assert!(ticket.protocol.ends_with(&ticket.id.0.to_string()));
    assert_eq!(ticket.protocol.len(), 8 + ticket.id.0.to_string().len());
    let cycles = tickets::cycles(db, a, ticket.id).await?;
    assert_eq!(cycles.len(), 1);
    assert_eq!(
        (
            cycles[0].queue_id,
            cycles[0].accepted_at,
            cycles[0].closed_at
        ),
        (Some(c.sales), None, None)
    );
    assert_eq!(tickets::get(db, a, ticket.id).await?, ticket);
    assert_eq!(
        tickets::find_open_for_contact(db, a, jose, web).await?,
        Some(ticket.clone())
    );

    // One non-closed ticket per contact and connection.
    assert!(conflict(
        tickets::create(db, a, &new_ticket(jose, web)).await
    ));
    assert_unknown(
        tickets::create(db, a, &new_ticket(b_contact, web)).await,
        "contact_id",
        b_contact.0,
    );
    assert_unknown(
        tickets::create(db, a, &new_ticket(jose, b_connection)).await,
        "connection_id",
        b_connection.0,
    );
    assert_unknown(
        tickets::create(
            db,
            a,
            &NewTicket {
                owner_id: Some(w.stranger),
                ..new_ticket(jose, web)
            },
        )
        .await,
        "owner_id",
        w.stranger.0,
    );
    assert_unknown(
        tickets::create(
            db,
            a,
            &NewTicket {
                queue_id: Some(c.b_queue),
                ..new_ticket(jose, web)
            },
        )
        .await,
        "queue_id",
        c.b_queue.0,
    );
    assert!(not_found(tickets::get(db, b, ticket.id).await));
    assert_eq!(
        tickets::find_open_for_contact(db, b, jose, web).await?,
        None
    );
    assert!(tickets::cycles(db, b, ticket.id).await?.is_empty());

    // Accept, close, a new ticket, and a reopen that must wait for it.
    let t1 = Timestamp::now();
    let accepted = tickets::set_status(
        db,
        a,
        ticket.id,
        TicketStatus::Open,
        Some(w.agent),
        Some(c.sales),
        t1,
    )
    .await?;
    assert_eq!(
        (accepted.status, accepted.owner_id, accepted.updated_at),
        (TicketStatus::Open, Some(w.agent), t1)
    );
    let cycle = &tickets::cycles(db, a, ticket.id).await?[0];
    assert_eq!(
        (cycle.accepted_at, cycle.owner_id),
        (Some(t1), Some(w.agent))
    );
    assert_unknown(
        tickets::set_status(
            db,
            a,
            ticket.id,
            TicketStatus::Open,
            Some(w.stranger),
            None,
            t1,
        )
        .await,
        "owner_id",
        w.stranger.0,
    );
    assert_unknown(
        tickets::set_status(
            db,
            a,
            ticket.id,
            TicketStatus::Pending,
            None,
            Some(c.b_queue),
            t1,
        )
        .await,
        "queue_id",
        c.b_queue.0,
    );
    assert!(not_found(
        tickets::set_status(db, b, ticket.id, TicketStatus::Closed, None, None, t1).await
    ));
    assert_eq!(
        tickets::get(db, a, ticket.id).await?,
        accepted,
        "refused moves change nothing"
    );

    let t2 = t1.plus_millis(1000);
    let closed = tickets::set_status(
        db,
        a,
        ticket.id,
        TicketStatus::Closed,
        Some(w.agent),
        Some(c.sales),
        t2,
    )
    .await?;
    assert_eq!(
        (closed.status, closed.closed_at),
        (TicketStatus::Closed, Some(t2))
    );
    assert_eq!(
        tickets::cycles(db, a, ticket.id).await?[0].closed_at,
        Some(t2)
    );
    assert_eq!(
        tickets::find_open_for_contact(db, a, jose, web).await?,
        None
    );
    let second = tickets::create(db, a, &new_ticket(jose, web)).await?;
    assert_ne!(second.protocol, ticket.protocol);
    assert!(conflict(
        tickets::set_status(
            db,
            a,
            ticket.id,
            TicketStatus::Pending,
            None,
            Some(c.sales),
            t2
        )
        .await
    ));
    let t3 = t2.plus_millis(1000);
    tickets::set_status(db, a, second.id, TicketStatus::Closed, None, None, t3).await?;
    let reopened = tickets::set_status(
        db,
        a,
        ticket.id,
        TicketStatus::Pending,
        Some(w.agent),
        Some(c.support),
        t3,
    )
    .await?;
    assert_eq!(
        (reopened.status, reopened.closed_at, reopened.queue_id),
        (TicketStatus::Pending, None, Some(c.support))
    );
    let cycles = tickets::cycles(db, a, ticket.id).await?;
    assert_eq!(cycles.len(), 2, "reopening starts a new cycle");
    assert_eq!(
        (
            cycles[0].closed_at,
            cycles[1].opened_at,
            cycles[1].closed_at
        ),
        (Some(t2), t3, None)
    );
    assert_eq!(
        (cycles[1].accepted_at, cycles[1].queue_id),
        (None, Some(c.support))
    );
    assert_eq!(
        tickets::find_open_for_contact(db, a, jose, web)
            .await?
            .map(|t| t.id),
        Some(ticket.id)
    );
    Ok(ticket.id)
}

fn inbound(
    ticket_id: TicketId,
    connection_id: ConnectionId,
    contact_id: ContactId,
    sent_at: i64,
) -> NewMessage {
    NewMessage {
        ticket_id,
        connection_id,
        contact_id,
        direction: MessageDirection::In,
        author: MessageAuthor::Contact,
        author_user_id: None,
        kind: MessageKind::Text,
        body: format!("hello at {sent_at}"),
        provider_id: None,
        quoted_id: None,
        status: MessageStatus::Delivered,
        failure_reason: None,
        idempotency_key: None,
        queue_stamp: None,
        imported: false,
        sent_at: Timestamp(sent_at),
    }
}

#[allow(clippy::too_many_arguments)]
async fn message_story(
    db: &Db,
    w: &World,
    c: &Catalogue,
    ticket: TicketId,
    web: ConnectionId,
    whatsapp: ConnectionId,
    jose: ContactId,
    maria: ContactId,
) -> Result {
    let (a, b) = (w.a, w.b);
    let first = messages::insert(
        db,
        a,
        &NewMessage {
            provider_id: Some("wamid.1".into()),
            queue_stamp: Some(c.sales),
            ..inbound(ticket, web, jose, 1_000)
        },
    )
    .await?;
    assert_eq!(
        (first.ticket_id, first.contact_id, first.connection_id),
        (ticket, jose, web)
    );
    assert_eq!(
        (first.direction, first.status, first.queue_stamp),
        (
            MessageDirection::In,
            MessageStatus::Delivered,
            Some(c.sales)
        )
    );
    assert_eq!(messages::get(db, a, first.id).await?, first);
    let reply = messages::insert(
        db,
        a,
        &NewMessage {
            direction: MessageDirection::Out,
            author: MessageAuthor::User,
            author_user_id: Some(w.agent),
            status: MessageStatus::Queued,
            idempotency_key: Some("key-1".into()),
            quoted_id: Some(first.id),
            ..inbound(ticket, web, jose, 2_000)
        },
    )
    .await?;
    assert_eq!(
        (reply.author_user_id, reply.quoted_id, reply.status),
        (Some(w.agent), Some(first.id), MessageStatus::Queued)
    );
    // Same sent_at: the id breaks the tie.
    let note = messages::insert(
        db,
        a,
        &NewMessage {
            author: MessageAuthor::System,
            kind: MessageKind::SystemNote,
            imported: true,
            ..inbound(ticket, web, jose, 2_000)
        },
    )
    .await?;
    assert!(note.imported);

    assert!(
        conflict(
            messages::insert(
                db,
                a,
                &NewMessage {
                    provider_id: Some("wamid.1".into()),
                    ..inbound(ticket, web, jose, 3_000)
                }
            )
            .await
        ),
        "a provider id is stored once per connection"
    );
    assert!(conflict(
        messages::insert(
            db,
            a,
            &NewMessage {
                idempotency_key: Some("key-1".into()),
                ..inbound(ticket, web, jose, 3_000)
            }
        )
        .await
    ));
    let other_ticket = tickets::create(db, a, &new_ticket(jose, whatsapp)).await?;
    messages::insert(
        db,
        a,
        &NewMessage {
            provider_id: Some("wamid.1".into()),
            ..inbound(other_ticket.id, whatsapp, jose, 500)
        },
    )
    .await?;

    assert_unknown(
        messages::insert(db, a, &inbound(ticket, web, maria, 1)).await,
        "contact_id",
        maria.0,
    );
    assert_unknown(
        messages::insert(db, a, &inbound(ticket, whatsapp, jose, 1)).await,
        "connection_id",
        whatsapp.0,
    );
    assert_unknown(
        messages::insert(db, b, &inbound(ticket, web, jose, 1)).await,
        "ticket_id",
        ticket.0,
    );
    assert_unknown(
        messages::insert(
            db,
            a,
            &NewMessage {
                author_user_id: Some(w.stranger),
                ..inbound(ticket, web, jose, 1)
            },
        )
        .await,
        "author_user_id",
        w.stranger.0,
    );
    assert_unknown(
        messages::insert(
            db,
            a,
            &NewMessage {
                quoted_id: Some(MessageId(first.id.0 + 1_000)),
                ..inbound(ticket, web, jose, 1)
            },
        )
        .await,
        "quoted_id",
        first.id.0 + 1_000,
    );
    assert_unknown(
        messages::insert(
            db,
            a,
            &NewMessage {
                queue_stamp: Some(c.b_queue),
                ..inbound(ticket, web, jose, 1)
            },
        )
        .await,
        "queue_stamp",
        c.b_queue.0,
    );

    assert_eq!(
        messages::find_by_idempotency_key(db, a, "key-1").await?,
        Some(reply.clone())
    );
    assert_eq!(
        messages::find_by_idempotency_key(db, b, "key-1").await?,
        None
    );
    assert_eq!(
        messages::find_by_idempotency_key(db, a, "key-2").await?,
        None
    );
    assert!(not_found(messages::get(db, b, first.id).await));

    let page = |before, limit| messages::list_for_ticket(db, a, ticket, before, limit);
    let all: Vec<MessageId> = page(None, 10).await?.iter().map(|m| m.id).collect();
    assert_eq!(
        all,
        vec![note.id, reply.id, first.id],
        "newest first, id breaks ties"
    );
    let top: Vec<MessageId> = page(None, 2).await?.iter().map(|m| m.id).collect();
    assert_eq!(top, vec![note.id, reply.id]);
    let rest: Vec<MessageId> = page(Some((reply.sent_at, reply.id)), 2)
        .await?
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(rest, vec![first.id]);
    let after_note: Vec<MessageId> = page(Some((note.sent_at, note.id)), 10)
        .await?
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(after_note, vec![reply.id, first.id]);
    assert!(
        messages::list_for_ticket(db, b, ticket, None, 10)
            .await?
            .is_empty()
    );
    Ok(())
}

async fn merge_story(
    db: &Db,
    w: &World,
    c: &Catalogue,
    web: ConnectionId,
    jose: ContactId,
    maria: ContactId,
) -> Result {
    let a = w.a;
    // Maria has an open ticket on the same connection as José's open one, with a message.
    let hers = tickets::create(db, a, &new_ticket(maria, web)).await?;
    let her_message = messages::insert(db, a, &inbound(hers.id, web, maria, 5_000)).await?;
    contacts::update(
        db,
        a,
        maria,
        &ContactPatch {
            custom_fields: Some(json!({"cpf": "999", "city": "Recife"})),
            ..ContactPatch::default()
        },
    )
    .await?;
    let before = contacts::get(db, a, jose).await?;

    assert!(not_found(
        contacts::merge(db, a, jose, ContactId(maria.0 + 1_000)).await
    ));
    assert!(not_found(contacts::merge(db, w.b, jose, maria).await));
    assert!(conflict(contacts::merge(db, a, jose, jose).await));

    let merged = contacts::merge(db, a, jose, maria).await?;
    assert!(
        not_found(contacts::get(db, a, maria).await),
        "the absorbed contact is gone"
    );
    assert_eq!(
        merged.wallet_user_ids,
        vec![w.admin, w.agent],
        "kept wallet order first, no duplicates"
    );
    assert_eq!(merged.tag_ids, vec![c.tag]);
    assert_eq!(
        merged.email, before.email,
        "the kept contact's own fields win"
    );
    assert_eq!(
        merged.custom_fields,
        json!({"cpf": "123", "city": "Recife"})
    );
    assert!(
        merged
            .identities
            .iter()
            .any(|i| i.channel == ChannelKind::Telegram && i.external_id == "777001")
    );
    assert_eq!(
        contacts::find_by_identity(db, a, ChannelKind::Telegram, "777001")
            .await?
            .map(|c| c.id),
        Some(jose)
    );
    let moved = tickets::get(db, a, hers.id).await?;
    assert_eq!(
        (moved.contact_id, moved.status),
        (jose, TicketStatus::Closed),
        "a second open ticket is closed"
    );
    assert_eq!(
        tickets::cycles(db, a, hers.id).await?[0]
            .close_reason
            .as_deref(),
        Some("merged")
    );
    assert_eq!(messages::get(db, a, her_message.id).await?.contact_id, jose);
    assert_eq!(
        tickets::find_open_for_contact(db, a, jose, web)
            .await?
            .map(|t| t.contact_id),
        Some(jose)
    );
    Ok(())
}

async fn inbound_story(
    db: &Db,
    w: &World,
    web: ConnectionId,
    whatsapp: ConnectionId,
    b_connection: ConnectionId,
) -> Result {
    let (a, b) = (w.a, w.b);
    let at = Timestamp(1_700_000_000_000);
    let RecordOutcome::New(first) =
        inbound_events::record(db, a, whatsapp, "wamid.X", at, r#"{"entry":[]}"#).await?
    else {
        panic!("first delivery is new");
    };
    assert_eq!(
        inbound_events::record(db, a, whatsapp, "wamid.X", at.plus_millis(5), "{}").await?,
        RecordOutcome::Duplicate(first),
        "a repeat delivery is a duplicate of the first"
    );
    let RecordOutcome::New(other) =
        inbound_events::record(db, a, web, "wamid.X", at.plus_millis(10), "{}").await?
    else {
        panic!("same provider id on another connection is new");
    };
    assert_unknown(
        inbound_events::record(db, a, b_connection, "wamid.Y", at, "{}").await,
        "connection_id",
        b_connection.0,
    );
    let RecordOutcome::New(theirs) =
        inbound_events::record(db, b, b_connection, "wamid.X", at, "{}").await?
    else {
        panic!("tenant b's delivery is new");
    };

    let stored = inbound_events::get(db, a, first).await?;
    assert_eq!(
        (
            stored.connection_id,
            stored.provider_id.as_str(),
            stored.raw_body.as_str()
        ),
        (whatsapp, "wamid.X", r#"{"entry":[]}"#)
    );
    assert_eq!(
        (stored.outcome, stored.received_at, stored.processed_at),
        (InboundOutcome::Received, at, None)
    );
    let done_at = at.plus_millis(100);
    inbound_events::set_outcome(db, a, first, InboundOutcome::Processed, None, done_at).await?;
    inbound_events::set_outcome(
        db,
        a,
        other,
        InboundOutcome::Dropped,
        Some("group message"),
        done_at,
    )
    .await?;
    assert!(not_found(
        inbound_events::set_outcome(db, a, theirs, InboundOutcome::Failed, Some("x"), done_at)
            .await
    ));
    assert!(not_found(inbound_events::get(db, a, theirs).await));

    let processed = inbound_events::get(db, a, first).await?;
    assert_eq!(
        (processed.outcome, processed.processed_at, processed.reason),
        (InboundOutcome::Processed, Some(done_at), None)
    );
    let all: Vec<_> = inbound_events::list(db, a, None, 10)
        .await?
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(all, vec![other, first], "newest first");
    let dropped = inbound_events::list(db, a, Some(InboundOutcome::Dropped), 10).await?;
    assert_eq!(
        dropped
            .iter()
            .map(|e| (e.id, e.reason.as_deref()))
            .collect::<Vec<_>>(),
        vec![(other, Some("group message"))]
    );
    assert!(
        inbound_events::list(db, a, Some(InboundOutcome::Failed), 10)
            .await?
            .is_empty()
    );
    assert_eq!(inbound_events::list(db, a, None, 1).await?.len(), 1);
    assert_eq!(
        inbound_events::list(db, b, None, 10)
            .await?
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        vec![theirs]
    );
    Ok(())
}

/// Deleting a queue, flow or user leaves what pointed at it without that reference; a connection
/// with tickets cannot be deleted; deleting a contact takes its tickets and messages along.
async fn deletion_story(
    db: &Db,
    w: &World,
    c: &Catalogue,
    web: ConnectionId,
    jose: ContactId,
) -> Result {
    let a = w.a;
    let ticket = tickets::find_open_for_contact(db, a, jose, web)
        .await?
        .ok_or("José has an open ticket")?;
    let ticket = tickets::set_status(
        db,
        a,
        ticket.id,
        TicketStatus::Open,
        Some(w.agent),
        Some(c.support),
        Timestamp::now(),
    )
    .await?;
    assert_eq!(
        connections::get(db, a, web).await?.default_flow_id,
        Some(c.flow)
    );

    queues::delete(db, a, c.support).await?;
    assert_eq!(tickets::get(db, a, ticket.id).await?.queue_id, None);
    flows::delete(db, a, c.flow).await?;
    assert_eq!(connections::get(db, a, web).await?.default_flow_id, None);
    queues::delete(db, a, c.sales).await?;
    assert_eq!(connections::get(db, a, web).await?.default_queue_id, None);
    users::delete(db, a, w.agent).await?;
    let orphan = tickets::get(db, a, ticket.id).await?;
    assert_eq!((orphan.owner_id, orphan.status), (None, TicketStatus::Open));
    assert_eq!(
        contacts::get(db, a, jose).await?.wallet_user_ids,
        vec![w.admin],
        "the user leaves the wallet"
    );

    match connections::delete(db, a, web).await {
        Err(DbError::Conflict { constraint }) => {
            assert!(constraint.contains("tickets"), "{constraint}")
        }
        other => panic!("deleting a connection with tickets: {other:?}"),
    }
    let messages_before = messages::list_for_ticket(db, a, ticket.id, None, 10).await?;
    assert!(!messages_before.is_empty());
    contacts::delete(db, a, jose).await?;
    assert!(not_found(tickets::get(db, a, ticket.id).await));
    assert!(not_found(messages::get(db, a, messages_before[0].id).await));
    connections::delete(db, a, web).await?;
    assert!(not_found(connections::get(db, a, web).await));
    Ok(())
}
