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
        api::users::list, api::users::show, api::users::create, api::users::update, api::users::remove,
        api::queues::list, api::queues::show, api::queues::create, api::queues::update, api::queues::remove,
        api::jobs::show,
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
    DOCUMENT.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".to_owned()))
}
