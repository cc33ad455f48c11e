//! The table of every tenant setting (SPEC §10), in display order. Labels in pt-BR follow the seed
//! page word for word; help texts say exactly what the rules do with the value.

use super::SettingDefault::{AlwaysOpen, Bool, EmptyList, Int, Null, Text};
use super::SettingGroup::{
    Channels, Chatbot, Hours, Interface, Routing, Sending, Smtp, Tickets, Visibility,
};
use super::{FeatureControls, SEND_DELAY_LIMIT_MS, SettingDef, SettingKind};

/// Every setting, grouped by [`super::SettingGroup`] in `SettingGroup::ALL` order.
pub fn registry() -> &'static [SettingDef] {
    &REGISTRY
}

const BOOL: SettingKind = SettingKind::Bool;

/// WhatsApp's limit for one text message.
const MESSAGE_MAX_CHARS: usize = 4096;

static REGISTRY: [SettingDef; 58] = [
    // --- Visibility -------------------------------------------------------------------------
    SettingDef {
        key: "hide_others_tickets",
        kind: BOOL,
        group: Visibility,
        label_pt: "Não visualizar Tickets já atribuídos à outros usuários",
        label_en: "Hide tickets already assigned to other users",
        help_pt: "Se ativo, somente o usuário responsável pelo ticket e os administradores (e supervisores) \
                  visualizarão o atendimento. Tickets de grupo e fechados seguem as suas próprias opções.",
        help_en: "When on, a ticket owned by a user is seen only by that user and by admins (and \
                  supervisors). Group and closed tickets follow their own settings.",
        default: Bool(false),
    },
    SettingDef {
        key: "hide_bot_tickets",
        kind: BOOL,
        group: Visibility,
        label_pt: "Não visualizar Tickets no ChatBot",
        label_en: "Hide tickets in the chatbot",
        help_pt: "Habilitando esta opção, somente administradores (e supervisores) poderão visualizar \
                  tickets sem usuário que estiverem interagindo com o ChatBot ou com uma integração externa.",
        help_en: "When on, only admins (and supervisors) see tickets without an owner that are talking \
                  to the chatbot or to an external integration.",
        default: Bool(false),
    },
    SettingDef {
        key: "show_unassigned_to_all",
        kind: BOOL,
        group: Visibility,
        label_pt: "Visualizar Tickets sem Usuário ou Fila Atribuído",
        label_en: "Show tickets without a user or queue to everyone",
        help_pt: "Habilitando esta opção, todos os usuários visualizarão os atendimentos não fechados que \
                  não têm usuário nem fila (invalida os demais filtros e condições).",
        help_en: "When on, every user sees tickets that are not closed and have neither an owner nor a \
                  queue (this overrides the other filters and conditions).",
        default: Bool(false),
    },
    SettingDef {
        key: "supervisor_sees_as_user",
        kind: BOOL,
        group: Visibility,
        label_pt: "Remover privilégios de visualização do supervisor",
        label_en: "Remove the supervisor's viewing privileges",
        help_pt: "Habilitando esta opção, a listagem de tickets do supervisor seguirá a lógica do usuário \
                  comum e não mais a do administrador.",
        help_en: "When on, supervisors see tickets by the same rules as ordinary users instead of seeing \
                  everything like an admin.",
        default: Bool(false),
    },
    SettingDef {
        key: "show_groups_to_all",
        kind: BOOL,
        group: Visibility,
        label_pt: "Mostrar Grupos para todos os usuários",
        label_en: "Show groups to all users",
        help_pt: "Os tickets de grupos serão visíveis para todos os usuários, independentemente das filas.",
        help_en: "Group tickets are visible to every user, whatever their queues.",
        default: Bool(true),
    },
    SettingDef {
        key: "show_closed_to_all",
        kind: BOOL,
        group: Visibility,
        label_pt: "Mostrar Fechados para todos os usuários",
        label_en: "Show closed tickets to all users",
        help_pt: "Os tickets fechados serão visíveis para todos os usuários, independentemente do \
                  responsável e da fila.",
        help_en: "Closed tickets are visible to every user, whoever owned them and whatever their queue.",
        default: Bool(false),
    },
    SettingDef {
        key: "show_message_history",
        kind: BOOL,
        group: Visibility,
        label_pt: "Mostrar histórico de mensagens",
        label_en: "Show message history",
        help_pt: "O chat mostra todas as mensagens do mesmo contato na mesma conexão, em todos os tickets. \
                  Mensagens trocadas enquanto o ticket estava numa fila da qual o usuário não faz parte \
                  continuam ocultas (administradores veem todas).",
        help_en: "The chat shows every message of the same contact on the same connection, across all its \
                  tickets. Messages exchanged while the ticket was in a queue the user is not in stay \
                  hidden (admins see them all).",
        default: Bool(true),
    },
    SettingDef {
        key: "hide_old_tickets",
        kind: BOOL,
        group: Visibility,
        label_pt: "Filtrar atendimentos antigos",
        label_en: "Filter old tickets",
        help_pt: "Tickets fechados há mais dias do que o definido abaixo saem das listas, a não ser que um \
                  filtro de data os peça.",
        help_en: "Tickets closed more days ago than set below leave the lists, unless a date filter asks \
                  for them.",
        default: Bool(false),
    },
    SettingDef {
        key: "old_ticket_days",
        kind: SettingKind::Int { min: 1, max: 3650 },
        group: Visibility,
        label_pt: "Dias para considerar um atendimento antigo",
        label_en: "Days after which a ticket is old",
        help_pt: "Quantos dias depois de fechado um ticket passa a ser antigo para o filtro acima \
                  (de 1 a 3650).",
        help_en: "How many days after closing a ticket counts as old for the filter above (1 to 3650).",
        default: Int(30),
    },
    // --- Routing and wallet -----------------------------------------------------------------
    SettingDef {
        key: "force_wallet_routing",
        kind: BOOL,
        group: Routing,
        label_pt: "Forçar atendimento via Carteira",
        label_en: "Force service through the wallet",
        help_pt: "Caso essa opção esteja ativa, todo contato vinculado a uma carteira será direcionado ao \
                  primeiro dono da carteira (na ordem da carteira) que estiver online, não pausado e, com \
                  horários de usuário ativos, dentro do seu horário. Somente os donos da carteira \
                  visualizam esses atendimentos.",
        help_en: "When on, a new ticket from a contact with wallet owners goes to the first owner (in \
                  wallet order) who is online, not paused and, with user business hours on, within their \
                  hours. Only the wallet owners see these tickets.",
        default: Bool(false),
    },
    SettingDef {
        key: "wallet_overflow",
        kind: BOOL,
        group: Routing,
        label_pt: "Transbordo de Mensagens",
        label_en: "Wallet overflow",
        help_pt: "Se nenhum dono da carteira estiver disponível, o ticket vai para pendente na fila padrão \
                  da conexão, visível para os demais, e os donos são avisados; sem esta opção, ele é \
                  atribuído ao primeiro dono mesmo assim. Também ocorre quando o dono de um ticket \
                  pendente da carteira fica offline ou pausa.",
        help_en: "When no wallet owner is available, the ticket goes to pending in the connection's default \
                  queue, visible to the others, and the owners are notified; without this option it goes \
                  to the first owner anyway. It also happens when the owner of a pending wallet ticket \
                  goes offline or pauses.",
        default: Bool(false),
    },
    SettingDef {
        key: "disable_integrations_in_wallet",
        kind: BOOL,
        group: Routing,
        label_pt: "Desativar integrações externas quando carteirização estiver ativa",
        label_en: "Disable external integrations when wallet routing is on",
        help_pt: "Integrações externas (ChatGPT, Typebot, webhooks etc.) não rodam em tickets \
                  direcionados pela carteira.",
        help_en: "External integrations (ChatGPT, Typebot, webhooks, etc.) do not run on tickets routed \
                  through the wallet.",
        default: Bool(false),
    },
    SettingDef {
        key: "keep_user_on_pending",
        kind: BOOL,
        group: Routing,
        label_pt: "Forçar usuário atual ao mudar status do atendimento pendente",
        label_en: "Keep the current user when a ticket goes back to pending",
        help_pt: "O ticket manterá o usuário associado quando mudar de aberto para pendente (devolvido à \
                  fila ou movido automaticamente), aguardando o mesmo atendente.",
        help_en: "The ticket keeps its owner when it goes from open to pending (returned to the queue or \
                  moved automatically), so it waits for the same agent.",
        default: Bool(false),
    },
    SettingDef {
        key: "force_admin_on_pending",
        kind: BOOL,
        group: Routing,
        label_pt: "Forçar admin no atendimento",
        label_en: "Force an admin on tickets",
        help_pt: "Tickets pendentes que nenhuma regra atribuiu (sem dono de carteira, sem bot) serão \
                  atribuídos ao admin designado abaixo ou, se não houver, ao primeiro admin.",
        help_en: "Pending tickets that no rule assigned (no wallet owner, no bot) are assigned to the \
                  designated admin below or, when none is set, to the first admin.",
        default: Bool(false),
    },
    SettingDef {
        key: "designated_admin",
        kind: SettingKind::UserRef,
        group: Routing,
        label_pt: "Admin designado para o atendimento",
        label_en: "Designated admin for tickets",
        help_pt: "O admin que recebe os tickets quando \"Forçar admin no atendimento\" está ativo. Vazio: \
                  o primeiro admin.",
        help_en: "The admin who receives tickets when \"Force an admin on tickets\" is on. Empty: the \
                  first admin.",
        default: Null,
    },
    // --- Chatbot and integrations -------------------------------------------------------------
    SettingDef {
        key: "active_bot_flow",
        kind: SettingKind::FlowRef,
        group: Chatbot,
        label_pt: "Fluxo ativo para o Bot de Atendimento",
        label_en: "Active flow for the service bot",
        help_pt: "Escolhe o fluxo que será utilizado pelo Bot nos novos atendimentos cuja conexão não tem \
                  fluxo próprio (nunca em grupos). Vazio: sem bot.",
        help_en: "The flow the bot runs on new tickets whose connection has no flow of its own (never on \
                  groups). Empty: no bot.",
        default: Null,
    },
    SettingDef {
        key: "chatbot_tab",
        kind: BOOL,
        group: Chatbot,
        label_pt: "Habilitar guia de atendimento de Chatbots",
        label_en: "Enable the chatbot tab",
        help_pt: "Será adicionada uma guia exclusiva com os tickets que estão com o chatbot.",
        help_en: "Adds a tab of its own listing the tickets the chatbot is handling.",
        default: Bool(false),
    },
    SettingDef {
        key: "integration_wait_for_reply",
        kind: BOOL,
        group: Chatbot,
        label_pt: "Habilitar espera no processamento de mensagens com integrações externas",
        label_en: "Wait for external integrations before processing new messages",
        help_pt: "Enquanto uma integração externa processa uma mensagem, as novas mensagens do ticket \
                  aguardam e são entregues juntas depois da resposta: nunca descartadas nem fora de ordem.",
        help_en: "While an external integration is processing a message, the ticket's new messages wait \
                  and are handed over together after its reply: never dropped, never reordered.",
        default: Bool(true),
    },
    // --- Ticket handling ----------------------------------------------------------------------
    SettingDef {
        key: "allow_pause",
        kind: BOOL,
        group: Tickets,
        label_pt: "Permitir pausar atendimento",
        label_en: "Allow pausing tickets",
        help_pt: "Permite que o atendimento seja pausado temporariamente (sem fechamento automático nem \
                  transbordo enquanto pausado) e que usuários fiquem em pausa informando o motivo.",
        help_en: "Lets agents pause a ticket for a while (no automatic closing and no overflow while \
                  paused) and set themselves as paused with a reason.",
        default: Bool(false),
    },
    SettingDef {
        key: "require_demand_on_close",
        kind: BOOL,
        group: Tickets,
        label_pt: "Forçar definição de demanda no fechamento de atendimento",
        label_en: "Require a demand when closing a ticket",
        help_pt: "Exige definição de demanda (motivo de fechamento) no fechamento do atendimento. \
                  Fechamentos automáticos registram um motivo do sistema.",
        help_en: "A ticket can only be closed with a demand (closing reason). Automatic closes record a \
                  system reason instead.",
        default: Bool(false),
    },
    SettingDef {
        key: "enforce_signature",
        kind: BOOL,
        group: Tickets,
        label_pt: "Desabilitar controle de assinatura",
        label_en: "Disable signature control",
        help_pt: "Usuários não poderão desabilitar a assinatura (o nome do atendente em negrito antes de \
                  cada mensagem) no atendimento.",
        help_en: "Agents cannot switch off the signature (their name in bold before each message) on a \
                  ticket.",
        default: Bool(false),
    },
    SettingDef {
        key: "feature_controls",
        kind: SettingKind::Set(FeatureControls::NAMES),
        group: Tickets,
        label_pt: "Controle de Features",
        label_en: "Feature control",
        help_pt: "Controla funcionalidades para usuários: \"spy\" (espiar) deixa ler as mensagens de um \
                  ticket pendente antes de aceitá-lo; \"force_close\" (fechamento forçado) deixa fechar um \
                  ticket pendente sem aceitá-lo antes.",
        help_en: "Features granted to users: \"spy\" lets them read a pending ticket's messages before \
                  accepting it; \"force_close\" lets them close a pending ticket without accepting it \
                  first.",
        default: EmptyList,
    },
    SettingDef {
        key: "reopen_window_minutes",
        kind: SettingKind::Int { min: 0, max: 10080 },
        group: Tickets,
        label_pt: "Janela de reabertura do atendimento (minutos)",
        label_en: "Ticket reopen window (minutes)",
        help_pt: "Uma mensagem do contato até esta quantidade de minutos depois do fechamento reabre o \
                  mesmo ticket; depois disso, abre um novo. 0: sempre um novo ticket (de 0 a 10080).",
        help_en: "A message from the contact up to this many minutes after closing reopens the same \
                  ticket; later ones start a new ticket. 0: always a new ticket (0 to 10080).",
        default: Int(120),
    },
    // --- Message sending ----------------------------------------------------------------------
    SettingDef {
        key: "fast_send",
        kind: BOOL,
        group: Sending,
        label_pt: "Usar Envio Rápido de Mensagens",
        label_en: "Use fast message sending",
        help_pt: "Mensagens de atendentes, do bot e automáticas serão enviadas de forma imediata, sem \
                  passar pelo sistema de envio cadenciado. Envios em massa mantêm a cadência.",
        help_en: "Agent, bot and automatic messages go out immediately, skipping the cadenced sending. \
                  Bulk sends keep the cadence.",
        default: Bool(false),
    },
    SettingDef {
        key: "send_delay_min_ms",
        kind: SettingKind::Int {
            min: 0,
            max: SEND_DELAY_LIMIT_MS,
        },
        group: Sending,
        label_pt: "Intervalo mínimo entre envios (ms)",
        label_en: "Minimum delay between sends (ms)",
        help_pt: "Envio cadenciado: cada conexão espera um tempo aleatório entre o mínimo e o máximo antes \
                  de cada envio (por padrão em WhatsApp não oficial). De 0 a 60000, sem passar do máximo.",
        help_en: "Cadenced sending: each connection waits a random time between the minimum and the \
                  maximum before each send (by default on unofficial WhatsApp). 0 to 60000, not above the \
                  maximum.",
        default: Int(2000),
    },
    SettingDef {
        key: "send_delay_max_ms",
        kind: SettingKind::Int {
            min: 0,
            max: SEND_DELAY_LIMIT_MS,
        },
        group: Sending,
        label_pt: "Intervalo máximo entre envios (ms)",
        label_en: "Maximum delay between sends (ms)",
        help_pt: "Limite superior do tempo aleatório do envio cadenciado. De 0 a 60000, sem ficar abaixo \
                  do mínimo.",
        help_en: "Upper bound of the random wait of cadenced sending. 0 to 60000, not below the minimum.",
        default: Int(5000),
    },
    SettingDef {
        key: "waba_send_outside_window",
        kind: BOOL,
        group: Sending,
        label_pt: "Habilitar envio de mensagem Waba fora da janela (não garante a entrega)",
        label_en: "Allow WABA messages outside the window (delivery not guaranteed)",
        help_pt: "Habilita o envio de mensagens WABA após o envio de qualquer template neste atendimento, \
                  mesmo que a janela de 24 horas esteja fechada. Não garante a entrega; se a Meta recusar, \
                  o erro aparece no chat. Consulte as políticas Waba.",
        help_en: "Allows free-form WABA messages once any template was sent in this ticket, even when the \
                  24-hour window is closed. Delivery is not guaranteed; if Meta refuses, the error shows in \
                  the chat. See the WABA policies.",
        default: Bool(false),
    },
    SettingDef {
        key: "persist_media_download",
        kind: BOOL,
        group: Sending,
        label_pt: "Persistir Download de Mídias (Baileys)",
        label_en: "Persist media downloads (Baileys)",
        help_pt: "Downloads de mídias recebidas que falharem serão tentados de novo, com intervalos \
                  crescentes (pedindo novo envio ao WhatsApp), até o número de tentativas abaixo.",
        help_en: "Failed downloads of received media are retried with growing intervals (asking WhatsApp \
                  to upload them again), up to the number of attempts below.",
        default: Bool(true),
    },
    SettingDef {
        key: "media_download_attempts",
        kind: SettingKind::Int { min: 1, max: 20 },
        group: Sending,
        label_pt: "Tentativas de download de mídias",
        label_en: "Media download attempts",
        help_pt: "Quantas vezes, no total, o download de uma mídia recebida é tentado (de 1 a 20).",
        help_en: "How many times in all the download of a received media file is attempted (1 to 20).",
        default: Int(5),
    },
    // --- Channels, groups and calls -----------------------------------------------------------
    SettingDef {
        key: "ignore_group_messages",
        kind: BOOL,
        group: Channels,
        label_pt: "Ignorar Mensagens de Grupo",
        label_en: "Ignore group messages",
        help_pt: "O sistema não abrirá ticket para grupos: mensagens de grupos são descartadas.",
        help_en: "No ticket is opened for groups: messages from group chats are dropped.",
        default: Bool(true),
    },
    SettingDef {
        key: "ignore_instagram_stories",
        kind: BOOL,
        group: Channels,
        label_pt: "Ignorar Stories do Instagram",
        label_en: "Ignore Instagram stories",
        help_pt: "Menções em Stories e reações a Stories do Instagram serão ignoradas; uma resposta em texto \
                  a um Story continua chegando como mensagem normal, citando o Story.",
        help_en: "Instagram story mentions and reactions to stories are dropped; a text reply to a story \
                  still arrives as a normal message quoting the story.",
        default: Bool(false),
    },
    SettingDef {
        key: "reject_calls",
        kind: BOOL,
        group: Channels,
        label_pt: "Recusar chamadas no WhatsApp",
        label_en: "Reject WhatsApp calls",
        help_pt: "Ligações de áudio e vídeo serão recusadas automaticamente onde o canal permitir, com \
                  envio da mensagem abaixo (no máximo uma vez a cada 10 minutos por contato) e uma nota de \
                  chamada no ticket aberto.",
        help_en: "Voice and video calls are rejected automatically where the channel allows it; the message \
                  below is sent (at most once every 10 minutes per contact) and a call note is added to the \
                  open ticket.",
        default: Bool(false),
    },
    SettingDef {
        key: "reject_call_message",
        kind: SettingKind::Text { max_len: 1000 },
        group: Channels,
        label_pt: "Mensagem automática após recusar chamadas",
        label_en: "Automatic message after rejecting a call",
        help_pt: "Enviada a quem ligou depois que a chamada é recusada. Vazia: nenhuma mensagem.",
        help_en: "Sent to the caller after the call is rejected. Empty: no message.",
        default: Text(
            "Não atendemos chamadas de voz ou vídeo por aqui. Por favor, envie sua mensagem por texto \
             que responderemos em breve.",
        ),
    },
    SettingDef {
        key: "keep_contact_name",
        kind: BOOL,
        group: Channels,
        label_pt: "Não atualizar nome ao receber mensagens",
        label_en: "Do not update names on incoming messages",
        help_pt: "O sistema não atualizará o nome do contato com o nome do perfil em mensagem recebida. \
                  Nomes editados manualmente nunca são substituídos.",
        help_en: "The contact's name is not replaced by their profile name when a message arrives. Names \
                  edited by hand are never replaced.",
        default: Bool(false),
    },
    SettingDef {
        key: "blocked_numbers",
        kind: SettingKind::PhoneList,
        group: Channels,
        label_pt: "Números bloqueados na plataforma",
        label_en: "Numbers blocked on the platform",
        help_pt: "Lista de números que não devem ser atendidos: suas mensagens e chamadas são descartadas. \
                  Guardados no formato internacional (+5511987654321); números sem código do país são \
                  considerados brasileiros.",
        help_en: "Numbers that must not be served: their messages and calls are dropped. Stored in \
                  international format (+5511987654321); numbers without a country code are taken as \
                  Brazilian.",
        default: EmptyList,
    },
    // --- Interface ----------------------------------------------------------------------------
    SettingDef {
        key: "pin_connections_top",
        kind: BOOL,
        group: Interface,
        label_pt: "Fixar conexões no topo do atendimento",
        label_en: "Pin connections to the top of the tickets",
        help_pt: "Conexões deixarão de flutuar no rodapé e serão fixadas no topo da lista de atendimentos.",
        help_en: "Connections stop floating at the bottom and are pinned to the top of the ticket list.",
        default: Bool(false),
    },
    SettingDef {
        key: "order_by_last_message",
        kind: BOOL,
        group: Interface,
        label_pt: "Listar atendimentos pela última mensagem",
        label_en: "List tickets by last message",
        help_pt: "Ativo: atendimentos listados pela última mensagem recebida do contato. Inativo: pela \
                  última atualização do ticket.",
        help_en: "On: tickets are listed by the last message received from the contact. Off: by the \
                  ticket's last update.",
        default: Bool(true),
    },
    SettingDef {
        key: "tab_counters",
        kind: BOOL,
        group: Interface,
        label_pt: "Contador nas tabs superiores (Privados/Grupos)",
        label_en: "Counters on the top tabs (Private/Groups)",
        help_pt: "As tabs Privados e Grupos mostram quantos tickets visíveis têm mensagens não lidas.",
        help_en: "The Private and Groups tabs show how many visible tickets have unread messages.",
        default: Bool(true),
    },
    SettingDef {
        key: "sound_notifications",
        kind: BOOL,
        group: Interface,
        label_pt: "Notificações sonoras",
        label_en: "Sound notifications",
        help_pt: "O painel toca um som ao receber uma nova mensagem.",
        help_en: "The panel plays a sound when a new message arrives.",
        default: Bool(true),
    },
    SettingDef {
        key: "audio_recorder_plugin",
        kind: BOOL,
        group: Interface,
        label_pt: "Usar Plugin de Áudio (Beta)",
        label_en: "Use the audio plugin (beta)",
        help_pt: "Utiliza o novo plugin de áudio (beta) para gravar mensagens de voz.",
        help_en: "Uses the new audio plugin (beta) to record voice messages.",
        default: Bool(false),
    },
    SettingDef {
        key: "audio_waveform",
        kind: BOOL,
        group: Interface,
        label_pt: "Usar Módulo de Áudio com Ondas (Beta)",
        label_en: "Use the audio module with waveforms (beta)",
        help_pt: "Utiliza módulo de áudio que mostra as ondas sonoras das mensagens de áudio.",
        help_en: "Uses an audio module that shows the sound waves of audio messages.",
        default: Bool(false),
    },
    SettingDef {
        key: "tickets_page_size",
        kind: SettingKind::Int { min: 10, max: 200 },
        group: Interface,
        label_pt: "Quantidade de tickets que devem ser consultados em atendimentos",
        label_en: "Number of tickets fetched on the attendance screen",
        help_pt: "Define a quantidade de tickets carregados de cada vez na tela de atendimento (de 10 a 200).",
        help_en: "How many tickets the attendance screen loads at a time (10 to 200).",
        default: Int(40),
    },
    SettingDef {
        key: "chat_messages_page_size",
        kind: SettingKind::Int { min: 10, max: 500 },
        group: Interface,
        label_pt: "Quantidade de mensagens que devem ser carregadas no chat interno por atendimento",
        label_en: "Number of messages loaded in the chat per ticket",
        help_pt: "Define a quantidade de mensagens carregadas de cada vez no chat (de 10 a 500).",
        help_en: "How many messages the chat loads at a time (10 to 500).",
        default: Int(50),
    },
    // --- Business hours and automations ------------------------------------------------------
    SettingDef {
        key: "timezone",
        kind: SettingKind::Timezone,
        group: Hours,
        label_pt: "Fuso horário",
        label_en: "Time zone",
        help_pt: "Fuso horário IANA (por exemplo America/Sao_Paulo) usado nos horários de atendimento, \
                  feriados e saudações.",
        help_en: "IANA time zone (for example America/Sao_Paulo) used for business hours, holidays and \
                  greetings.",
        default: Text("America/Sao_Paulo"),
    },
    SettingDef {
        key: "business_hours",
        kind: SettingKind::Schedule,
        group: Hours,
        label_pt: "Horário de atendimento",
        label_en: "Business hours",
        help_pt: "Janelas semanais de atendimento da empresa (até duas por dia) e feriados, em que fica \
                  fechada. \"Sempre aberto\": nunca fora do horário. Filas e usuários podem ter horários \
                  próprios.",
        help_en: "The company's weekly opening windows (up to two per day) and holidays, on which it is \
                  closed. \"Always open\": never out of hours. Queues and users may have their own hours.",
        default: AlwaysOpen,
    },
    SettingDef {
        key: "out_of_hours_message",
        kind: SettingKind::Text {
            max_len: MESSAGE_MAX_CHARS,
        },
        group: Hours,
        label_pt: "Mensagem fora do horário de atendimento",
        label_en: "Out-of-hours message",
        help_pt: "Enviada quando uma mensagem chega fora do horário de atendimento, se a fila não tiver \
                  mensagem de ausência própria. Vazia: nenhuma mensagem.",
        help_en: "Sent when a message arrives outside business hours, unless the queue has an absence \
                  message of its own. Empty: no message.",
        default: Text(
            "Olá! No momento estamos fora do horário de atendimento. Recebemos sua mensagem e \
             responderemos assim que possível.",
        ),
    },
    SettingDef {
        key: "out_of_hours_message_max",
        kind: SettingKind::Int { min: 0, max: 100 },
        group: Hours,
        label_pt: "Máximo de vezes que a mensagem de horário de atendimento deve ser enviada",
        label_en: "Maximum times the out-of-hours message is sent",
        help_pt: "Define a quantidade máxima de vezes que a mensagem de ausência será enviada em cada \
                  ciclo do atendimento. 0: nunca (de 0 a 100).",
        help_en: "The most times the absence message is sent in each cycle of a ticket. 0: never \
                  (0 to 100).",
        default: Int(1),
    },
    SettingDef {
        key: "use_user_business_hours",
        kind: BOOL,
        group: Hours,
        label_pt: "Usar horários de atendimento do usuário",
        label_en: "Use the users' business hours",
        help_pt: "Quando o ticket tem um usuário, o horário de atendimento desse usuário decide se está \
                  fora do horário; a carteira só direciona para donos dentro do seu horário.",
        help_en: "When a ticket has an owner, that user's business hours decide whether it is out of \
                  hours; the wallet only routes to owners within their hours.",
        default: Bool(false),
    },
    SettingDef {
        key: "auto_resolve_idle",
        kind: BOOL,
        group: Hours,
        label_pt: "Resolver atendimento sem interação automaticamente",
        label_en: "Resolve idle tickets automatically",
        help_pt: "Um ticket aberto ou pendente cuja última mensagem foi nossa e cujo contato ficou em \
                  silêncio pelo tempo abaixo é fechado após o envio da mensagem abaixo (motivo \
                  \"inatividade\"). Grupos e tickets pausados nunca são fechados assim.",
        help_en: "An open or pending ticket whose last message was ours and whose contact stayed silent \
                  for the time below is closed after sending the message below (reason \"inactivity\"). \
                  Groups and paused tickets are never closed this way.",
        default: Bool(false),
    },
    SettingDef {
        key: "auto_resolve_after_minutes",
        kind: SettingKind::Int {
            min: 5,
            max: 525_600,
        },
        group: Hours,
        label_pt: "Tempo sem interação para resolver (minutos)",
        label_en: "Idle time before resolving (minutes)",
        help_pt: "Minutos de silêncio do contato até o fechamento automático (de 5 a 525600, um ano).",
        help_en: "Minutes of silence from the contact before the automatic close (5 to 525600, one year).",
        default: Int(1440),
    },
    SettingDef {
        key: "auto_resolve_message",
        kind: SettingKind::Text {
            max_len: MESSAGE_MAX_CHARS,
        },
        group: Hours,
        label_pt: "Mensagem ao resolver por inatividade",
        label_en: "Message sent when resolving for inactivity",
        help_pt: "Enviada ao contato antes do fechamento automático. Vazia: fecha sem mensagem.",
        help_en: "Sent to the contact before the automatic close. Empty: close without a message.",
        default: Text(
            "Como não recebemos resposta, estamos encerrando este atendimento. Se precisar de algo, é só \
             enviar uma nova mensagem.",
        ),
    },
    // --- SMTP ---------------------------------------------------------------------------------
    SettingDef {
        key: "smtp_enabled",
        kind: BOOL,
        group: Smtp,
        label_pt: "Ativar SMTP",
        label_en: "Enable SMTP",
        help_pt: "Quando ativo, o sistema enviará e-mails aos usuários (ticket atribuído ou transferido a \
                  eles, transbordo da carteira). É necessário informar o servidor, a porta, o usuário e a \
                  senha de e-mail.",
        help_en: "When on, users get e-mail (a ticket assigned or transferred to them, wallet overflow). \
                  The e-mail server, port, user and password must be filled in.",
        default: Bool(false),
    },
    SettingDef {
        key: "smtp_host",
        kind: SettingKind::Text { max_len: 253 },
        group: Smtp,
        label_pt: "Servidor",
        label_en: "Server",
        help_pt: "Servidor SMTP do seu provedor de e-mail, por exemplo smtp.gmail.com.",
        help_en: "Your e-mail provider's SMTP server, for example smtp.gmail.com.",
        default: Text(""),
    },
    SettingDef {
        key: "smtp_port",
        kind: SettingKind::Int {
            min: 1,
            max: 65_535,
        },
        group: Smtp,
        label_pt: "Porta SMTP",
        label_en: "SMTP port",
        help_pt: "Porta de acesso ao servidor SMTP: normalmente 587 com STARTTLS, 465 com TLS, 25 sem \
                  criptografia.",
        help_en: "Port of the SMTP server: usually 587 with STARTTLS, 465 with TLS, 25 without \
                  encryption.",
        default: Int(587),
    },
    SettingDef {
        key: "smtp_username",
        kind: SettingKind::Text { max_len: 254 },
        group: Smtp,
        label_pt: "Usuário",
        label_en: "User",
        help_pt: "Conta de e-mail que fará o envio.",
        help_en: "The e-mail account that sends the messages.",
        default: Text(""),
    },
    SettingDef {
        key: "smtp_password",
        kind: SettingKind::Secret,
        group: Smtp,
        label_pt: "Senha",
        label_en: "Password",
        help_pt: "Senha do e-mail. Guardada criptografada e nunca exibida; deixe vazio para removê-la.",
        help_en: "The e-mail password. Stored encrypted and never shown; leave empty to remove it.",
        default: Null,
    },
    SettingDef {
        key: "smtp_security",
        kind: SettingKind::Enum(&["none", "starttls", "tls"]),
        group: Smtp,
        label_pt: "Protocolo de Segurança",
        label_en: "Security protocol",
        help_pt: "none: sem criptografia; starttls: ativa TLS depois de conectar (porta 587); tls: TLS desde \
                  o início (porta 465).",
        help_en: "none: no encryption; starttls: switches to TLS after connecting (port 587); tls: TLS from \
                  the start (port 465).",
        default: Text("starttls"),
    },
    SettingDef {
        key: "smtp_from",
        kind: SettingKind::Email,
        group: Smtp,
        label_pt: "Remetente",
        label_en: "Sender address",
        help_pt: "Endereço usado no campo De dos e-mails. Vazio: o usuário acima.",
        help_en: "Address used in the From field of the e-mails. Empty: the user above.",
        default: Text(""),
    },
];
