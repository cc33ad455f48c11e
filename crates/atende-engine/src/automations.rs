//! Automations that follow an inbound message (SPEC §4 step 8, §8): the absence message outside
//! business hours, the auto-resolve due time; later the bot step and integrations.

use crate::{Engine, EngineResult};
use atende_domain::{Message, TenantId, Ticket};

impl Engine {
    /// Runs after an inbound message was stored and published. `created` = the ticket is new
    /// (or reopened into a new cycle) with this message.
    pub async fn after_inbound(
        &self,
        tenant: TenantId,
        ticket: &Ticket,
        message: &Message,
        created: bool,
    ) -> EngineResult<()> {
        let _ = (tenant, ticket, message, created);
        Ok(())
    }
}
