"""What the bot says, in Italian and English."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "im_link_request": {
        "it": "Buongiorno, questo è il canale di assistenza. Non riconosciamo ancora questo "
        "account: ci scriva l'indirizzo email con cui è registrato presso di noi e le "
        "invieremo un codice per collegarlo.",
        "en": "Hello, this is the help desk. We do not know this account yet: please send us "
        "the email address you are registered with, and we will send you a code to link it.",
    },
    "im_code_sent": {
        "it": "Se l'indirizzo è registrato, le abbiamo appena inviato per email un codice di 6 "
        "cifre, valido 15 minuti: lo scriva qui.",
        "en": "If the address is registered, we have just emailed you a 6-digit code, valid "
        "for 15 minutes: please type it here.",
    },
    "im_code_wrong": {
        "it": "Il codice non è corretto. Tentativi rimasti: {left}.",
        "en": "That code is not right. Attempts left: {left}.",
    },
    "im_code_reset": {
        "it": "Il codice è scaduto o i tentativi sono finiti: ci riscriva il suo indirizzo "
        "email per riceverne uno nuovo.",
        "en": "The code expired or too many attempts were made: please send your email "
        "address again to get a new one.",
    },
    "im_code_limit": {
        "it": "Abbiamo già inviato diversi codici: riprovi fra un'ora, per favore.",
        "en": "We have already sent several codes: please try again in an hour.",
    },
    "im_linked": {
        "it": "Grazie {name}, l'account è collegato. Ci descriva pure il problema: ogni "
        "messaggio diventa un ticket.",
        "en": "Thank you {name}, your account is linked. Please describe the problem: every "
        "message becomes a ticket.",
    },
    "im_link_taken": {
        "it": "Questo account è già collegato a un'altra persona: contatti l'assistenza per email.",
        "en": "This account is already linked to someone else: please contact the help desk "
        "by email.",
    },
    "im_group_unlinked": {
        "it": "{name}, per aprire richieste da questo gruppo colleghi prima il suo account: "
        "mi scriva in privato.",
        "en": "{name}, to open requests from this group please link your account first: "
        "write to me privately.",
    },
    "im_critical_question": {
        "it": "Abbiamo ricevuto il messaggio. Il lavoro è fermo? Risponda «sì» o «no».",
        "en": 'We received your message. Is work stopped? Please answer "yes" or "no".',
    },
    "im_ticket_opened": {
        "it": "Richiesta registrata: ticket #{ticket}. Le risponderemo qui e per email.",
        "en": "Request registered: ticket #{ticket}. We will answer here and by email.",
    },
    "im_ticket_critical": {
        "it": "Richiesta CRITICA registrata: ticket #{ticket}. Il tecnico di turno è stato "
        "avvisato e la contatterà al più presto.",
        "en": "CRITICAL request registered: ticket #{ticket}. The engineer on call has been "
        "paged and will contact you as soon as possible.",
    },
    "im_media_refused": {
        "it": "Il file «{file}» non è stato accettato ({why}): la richiesta è registrata "
        "senza. Se serve, ce lo invii di nuovo, entro {limit} per file.",
        "en": 'The file "{file}" was not accepted ({why}): the request is recorded without '
        "it. If needed, please send it again, at most {limit} per file.",
    },
}


def text(key: str, locale: str, **values: object) -> str:
    lang = "en" if locale.startswith("en") else "it"
    return TEXTS[key][lang].format(**values)
