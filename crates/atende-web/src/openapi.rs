//! The OpenAPI document at `/api/v1/openapi.json`, generated from the handlers' annotations.

use crate::api;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "atende API", description = "Omnichannel customer service: tickets, queues, contacts, channels."),
    paths(
        api::health::healthz, api::health::readyz, api::health::metrics,
        api::auth::login, api::auth::logout, api::auth::me, api::auth::change_password,
        api::platform::list, api::platform::create, api::platform::update,
        api::settings::list, api::settings::show, api::settings::update,
        api::settings_batch::update_many,
        api::users::list, api::users::show, api::users::create, api::users::update, api::users::remove,
        api::queues::list, api::queues::show, api::queues::create, api::queues::update, api::queues::remove,
        api::contacts::list, api::contacts::show, api::contacts::create, api::contacts::update,
        api::contacts::remove, api::contacts::merge,
        api::connections::list, api::connections::show, api::connections::create,
        api::connections::update, api::connections::remove,
        api::templates::sync, api::templates::list,
        api::catalog::list_demands, api::catalog::show_demand, api::catalog::create_demand,
        api::catalog::update_demand, api::catalog::remove_demand,
        api::catalog::list_tags, api::catalog::show_tag, api::catalog::create_tag,
        api::catalog::update_tag, api::catalog::remove_tag,
        api::catalog::list_quick_replies, api::catalog::show_quick_reply,
        api::catalog::create_quick_reply, api::catalog::update_quick_reply,
        api::catalog::remove_quick_reply,
        api::flows::list, api::flows::show, api::flows::create, api::flows::update, api::flows::remove,
        api::jobs::show, api::maintenance::start,
        crate::live::ws_ticket,
        api::audit::list,
        api::tickets::list, api::tickets::counts, api::tickets::show, api::tickets::messages,
        api::tickets::mark_read,
        api::ticket_commands::accept, api::ticket_commands::return_ticket,
        api::ticket_commands::transfer, api::ticket_commands::pause, api::ticket_commands::resume,
        api::ticket_commands::close, api::ticket_commands::reopen,
        api::ticket_messages::create, api::ticket_messages::resend,
        api::ticket_messages::signature, api::ticket_messages::create_template,
        api::message_files::show, api::message_files::file,
        api::dashboard::show,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Serialised once: the document does not change while the process runs.
pub fn document_json() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|_| "{}".to_owned())
    })
}
