"""The portal's words in Italian (the default) and English.

Templates and code write English and call ``_("...")``; Italian comes from ``IT``. A unit
test checks that every English text has its Italian.
"""

from __future__ import annotations

from datetime import datetime

from helpdesk.v1 import common_pb2 as pb
from services.common.local_dates import DISPLAY_ZONE, month_name
from services.gateway import (
    texts_knowledge,
    texts_queues,
    texts_quotes,
    texts_sales,
    texts_tools,
    texts_workspace,
)

LOCALES = ("it", "en")
DEFAULT_LOCALE = "it"


def locale_of(value: str | None) -> str:
    return value if value in LOCALES else DEFAULT_LOCALE


def translate(locale: str, text: str) -> str:
    if locale == "en":
        return text
    return IT.get(text, text)


def day(when: datetime, locale: str) -> str:
    """``15 dicembre 2026`` / ``15 December 2026`` in the desk's time zone."""
    local = when.astimezone(DISPLAY_ZONE)
    return f"{local.day} {month_name(local.month, locale)} {local.year}"


def moment(when: datetime, locale: str) -> str:
    """``15 dicembre 2026, 14:30``."""
    return f"{day(when, locale)}, {when.astimezone(DISPLAY_ZONE):%H:%M}"


def size(n: int) -> str:
    if n >= 1024 * 1024:
        whole = n % (1024 * 1024) == 0
        return f"{n // (1024 * 1024)} MiB" if whole else f"{n / (1024 * 1024):.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n} B"


STATUS = {
    pb.TICKET_STATUS_NEW: "New",
    pb.TICKET_STATUS_OPEN: "Open",
    pb.TICKET_STATUS_PENDING: "Pending",
    pb.TICKET_STATUS_ON_HOLD: "On hold",
    pb.TICKET_STATUS_SOLVED: "Solved",
    pb.TICKET_STATUS_CLOSED: "Closed",
}
PRIORITY = {
    pb.PRIORITY_LOW: "Low",
    pb.PRIORITY_NORMAL: "Normal",
    pb.PRIORITY_HIGH: "High",
    pb.PRIORITY_URGENT: "Urgent",
}
CRITICALITY = {
    pb.CRITICALITY_NON_BLOCKING: "Non-blocking",
    pb.CRITICALITY_BLOCKING: "Blocking",
    pb.CRITICALITY_CRITICAL: "Critical",
}
# Seed 001's three tiers, one line each.
CRITICALITY_EXPLAINED = {
    pb.CRITICALITY_NON_BLOCKING: "You can keep working: an error, a question, a slow function.",
    pb.CRITICALITY_BLOCKING: "A function you need does not work and you cannot go on with it.",
    pb.CRITICALITY_CRITICAL: (
        "Work is stopped for you or your company: for immediate help also call or write on "
        "Telegram / WhatsApp."
    ),
}
RATINGS = {
    1: "Not at all satisfied",
    2: "Not very satisfied",
    3: "Fairly satisfied",
    4: "Satisfied",
    5: "Very satisfied",
}

IT: dict[str, str] = {
    # layout
    "Help desk": "Assistenza",
    "Skip to content": "Vai al contenuto",
    "Main": "Principale",
    "My tickets": "Le mie richieste",
    "New ticket": "Nuova richiesta",
    "Log out": "Esci",
    "Sign in": "Accedi",
    "Not a customer? Send a request": "Non sei cliente? Invia una richiesta",
    "Field": "Campo",
    "API": "API",
    # sign-in and account
    "Sign in to the help desk": "Accedi all'assistenza",
    "Email": "Email",
    "Password": "Password",
    "Log in": "Accedi",
    "Forgot your password?": "Password dimenticata?",
    "Your password arrived by email when your access was created. You can also open a ticket "
    "by writing to the support address from your registered email.": (
        "La password ti è arrivata per email alla creazione dell'accesso. Puoi anche aprire una "
        "richiesta scrivendo all'indirizzo dell'assistenza dalla tua email registrata."
    ),
    "We will email you a one-time code to choose a new password.": (
        "Ti invieremo per email un codice monouso per scegliere una nuova password."
    ),
    "Send the code": "Invia il codice",
    "Choose a new password": "Scegli una nuova password",
    "Code from the email": "Codice ricevuto per email",
    "New password": "Nuova password",
    "Set the password": "Imposta la password",
    "Your account": "Il tuo account",
    "Name": "Nome",
    "Change password": "Cambia password",
    "Current password": "Password attuale",
    "Wrong email or password.": "Email o password errate.",
    "If the address belongs to an account, a code is on its way: it is valid for a short "
    "time and works once.": (
        "Se l'indirizzo appartiene a un account, è in arrivo un codice: vale per poco tempo e "
        "funziona una volta sola."
    ),
    "Your password is changed: sign in with it.": ("La password è cambiata: accedi con la nuova."),
    "Your password is changed.": "La password è cambiata.",
    "Your session has ended: sign in again.": "La sessione è scaduta: accedi di nuovo.",
    "You are signed out.": "Sei uscito.",
    # lists
    "Status": "Stato",
    "Subject contains": "L'oggetto contiene",
    "Filter": "Filtra",
    "Ticket": "Richiesta",
    "Subject": "Oggetto",
    "Priority": "Priorità",
    "Requester": "Richiedente",
    "Last update": "Ultimo aggiornamento",
    "No tickets match.": "Nessuna richiesta corrisponde.",
    "All": "Tutte",
    "Not closed": "Non chiuse",
    "Your organisation's tickets": "Le richieste della tua azienda",
    "Tickets": "Richieste",
    # new ticket
    "Product": "Prodotto",
    "Description": "Descrizione",
    "What happened, what you expected, the exact error message, and what you were doing.": (
        "Cosa è successo, cosa ti aspettavi, il messaggio di errore esatto e cosa stavi facendo."
    ),
    "Version": "Versione",
    "Operating system": "Sistema operativo",
    "Phone": "Telefono",
    "Criticality": "Criticità",
    "Urgent is reserved for the most severe problems, when work is stopped; we may change the "
    "priority after reading the request.": (
        "Urgente è riservata ai problemi di massima gravità, che richiedono un intervento "
        "immediato; potremo cambiare la priorità dopo aver letto la richiesta."
    ),
    "Attachments": "Allegati",
    "Screenshots and files: drag them here or choose them.": (
        "Schermate e file: trascinali qui o sceglili."
    ),
    "This file is larger than the limit:": "Questo file supera il limite:",
    "The files together are larger than the limit:": "I file insieme superano il limite:",
    "At most {file} a file and {total} in all.": "Al massimo {file} per file e {total} in tutto.",
    "Send": "Invia",
    "Your ticket {id} is open: we have also emailed you its number.": (
        "La tua richiesta {id} è aperta: ti abbiamo inviato il numero anche per email."
    ),
    "Non-blocking": "Non bloccante",
    "Blocking": "Bloccante",
    "Critical": "Assoluta criticità",
    "Let us decide": "Decidete voi",
    "You can keep working: an error, a question, a slow function.": (
        "Puoi continuare a lavorare: un errore, una domanda, una funzione lenta."
    ),
    "A function you need does not work and you cannot go on with it.": (
        "Una funzione che ti serve non va e non puoi proseguire."
    ),
    "Work is stopped for you or your company: for immediate help also call or write on "
    "Telegram / WhatsApp.": (
        "Il lavoro tuo o dell'azienda è fermo: per un intervento immediato chiama anche o "
        "scrivi su Telegram / WhatsApp."
    ),
    "Low": "Bassa",
    "Normal": "Normale",
    "High": "Alta",
    "Urgent": "Urgente",
    # statuses, from seed 003's words
    "New": "Nuovo",
    "Open": "Aperto",
    "Pending": "In attesa",
    "On hold": "In sospeso",
    "Solved": "Risolto",
    "Closed": "Chiuso",
    "We have received the request; the help desk is choosing who will handle it.": (
        "La richiesta è stata ricevuta; l'assistenza sta individuando la persona a cui assegnarla."
    ),
    "{name} is working on it.": "{name} ci sta lavorando.",
    "A technician is working on it.": "Un tecnico ci sta lavorando.",
    "We are waiting for your answer: reply below with what was asked.": (
        "Attendiamo una tua risposta: rispondi qui sotto con quanto richiesto."
    ),
    "The request is with development; we will write as soon as the update is ready.": (
        "La richiesta è in carico allo sviluppo; ti scriveremo appena l'aggiornamento è pronto."
    ),
    "We are waiting for {name}, who must act before we can go on.": (
        "Attendiamo {name}, che deve intervenire prima che possiamo proseguire."
    ),
    "The help desk has solved it. Confirm the solution, or reopen it if the problem is still "
    "there. It closes automatically on {date} unless you answer.": (
        "L'assistenza l'ha risolta. Conferma la soluzione, oppure riaprila se il problema c'è "
        "ancora. Si chiude automaticamente il {date} se non rispondi."
    ),
    "The help desk has solved it. Confirm the solution, or reopen it if the problem is still "
    "there.": (
        "L'assistenza l'ha risolta. Conferma la soluzione, oppure riaprila se il problema c'è "
        "ancora."
    ),
    "Closed: it cannot be reopened. If the problem comes back, a new request is needed.": (
        "Chiusa: non può essere riaperta. Se il problema si ripresenta occorre una nuova richiesta."
    ),
    "Closed. Write a comment below and the ticket is reactivated.": (
        "Chiusa. Scrivi un commento qui sotto e la richiesta viene riattivata."
    ),
    "Merged into {id}: the conversation goes on there.": (
        "Unita alla {id}: la conversazione continua lì."
    ),
    "A comment reactivates it.": "Un commento la riattiva.",
    "Writing here reopens it.": "Scrivendo qui la riapri.",
    # ticket page
    "Confirm the solution": "Conferma la soluzione",
    "What is still wrong? (optional)": "Cosa non va ancora? (facoltativo)",
    "Reopen": "Riapri",
    "Opened": "Aperta il",
    "Handled by": "Gestita da",
    "Follows": "Segue",
    "Followed by": "Seguita da",
    "Merged into": "Unita a",
    "Conversation": "Conversazione",
    "Download": "Scarica",
    "Reply": "Rispondi",
    "Message": "Messaggio",
    "Open a new request about this": "Apri una nuova richiesta su questo",
    "This ticket is closed and cannot be reopened. If the problem is back, write here: a new "
    "ticket linked to this one is opened.": (
        "Questa richiesta è chiusa e non può essere riaperta. Se il problema si è ripresentato "
        "scrivi qui: si apre una nuova richiesta collegata a questa."
    ),
    "help desk": "assistenza",
    "you": "tu",
    "customer": "cliente",
    "system": "sistema",
    "Your reply is added.": "La tua risposta è stata aggiunta.",
    "Your reply reopened the ticket.": "La tua risposta ha riaperto la richiesta.",
    "Thank you: the ticket is closed.": "Grazie: la richiesta è chiusa.",
    "The ticket is reopened: the help desk will work on it again.": (
        "La richiesta è riaperta: l'assistenza ci lavorerà di nuovo."
    ),
    "A new ticket {id} is open, linked to {old}.": (
        "È aperta una nuova richiesta {id}, collegata alla {old}."
    ),
    # links from emails
    "The problem is not solved? Reopen the ticket and the help desk will work on it again.": (
        "Il problema non è risolto? Riapri la richiesta e l'assistenza ci lavorerà di nuovo."
    ),
    "Is the problem solved? Confirm it and the ticket closes.": (
        "Il problema è risolto? Confermalo e la richiesta si chiude."
    ),
    "See the whole ticket (sign-in needed)": "Vedi tutta la richiesta (serve l'accesso)",
    "This link is no longer valid": "Questo link non è più valido",
    "The link has expired or was changed. Sign in to see the ticket, or reply to the email.": (
        "Il link è scaduto o è stato modificato. Accedi per vedere la richiesta, oppure "
        "rispondi all'email."
    ),
    # survey
    "How did we do?": "Come ci siamo comportati?",
    "How satisfied are you with the support you received?": (
        "Quanto sei soddisfatto dell'assistenza ricevuta?"
    ),
    "Comment (optional)": "Commento (facoltativo)",
    "Not at all satisfied": "Per niente soddisfatto",
    "Not very satisfied": "Poco soddisfatto",
    "Fairly satisfied": "Abbastanza soddisfatto",
    "Satisfied": "Soddisfatto",
    "Very satisfied": "Molto soddisfatto",
    "Thank you for your answer about {id}. You can change it until {date}.": (
        "Grazie per la risposta sulla {id}. Puoi cambiarla fino al {date}."
    ),
    "This survey link is not valid or has expired.": (
        "Questo link al questionario non è valido o è scaduto."
    ),
    # sales
    "Send a request": "Invia una richiesta",
    "Not a customer yet? Tell us what you need: our sales office will contact you. Before any "
    "direct work on your systems we send a quote.": (
        "Non sei ancora cliente? Dicci di cosa hai bisogno: ti contatterà il nostro ufficio "
        "commerciale. Prima di qualsiasi intervento diretto sui tuoi sistemi ti inviamo un "
        "preventivo."
    ),
    "Company": "Azienda",
    "Thank you: your request has reached our sales office, who will contact you. We have also "
    "sent you a confirmation by email.": (
        "Grazie: la richiesta è arrivata al nostro ufficio commerciale, che ti contatterà. Ti "
        "abbiamo inviato anche una conferma per email."
    ),
    # errors
    "Try again": "Riprova",
    "Back to the start page": "Torna alla pagina iniziale",
    "Not found": "Non trovata",
    "There is no such page, or you may not see it.": (
        "Questa pagina non esiste, oppure non puoi vederla."
    ),
    "Not allowed": "Non consentito",
    "You may not do this.": "Non puoi farlo.",
    "The help desk is not answering": "L'assistenza non risponde",
    "A service of the help desk is not answering right now. What you wrote is kept below: "
    "try again in a moment.": (
        "Un servizio dell'assistenza al momento non risponde. Quanto hai scritto è qui sotto: "
        "riprova tra poco."
    ),
    "A service of the help desk is not answering right now: try again in a moment.": (
        "Un servizio dell'assistenza al momento non risponde: riprova tra poco."
    ),
    "Attached files must be chosen again.": "I file allegati vanno scelti di nuovo.",
    "Too large": "Troppo grande",
    "Attachments may be at most {file} a file and {total} in all. Nothing was sent.": (
        "Gli allegati possono essere al massimo {file} per file e {total} in tutto. Non è "
        "stato inviato nulla."
    ),
    "The form has expired: it is shown again, send it once more.": (
        "Il modulo è scaduto: eccolo di nuovo, invialo ancora una volta."
    ),
    "This cannot be done now": "Non si può fare adesso",
    "Too many requests": "Troppe richieste",
    "Too many requests from this address: try again later.": (
        "Troppe richieste da questo indirizzo: riprova più tardi."
    ),
    "Something went wrong": "Qualcosa è andato storto",
    "The help desk could not do this. Try again; if it happens again, write to the support "
    "address.": (
        "L'assistenza non è riuscita a farlo. Riprova; se succede ancora, scrivi all'indirizzo "
        "dell'assistenza."
    ),
    "Please check the form": "Controlla il modulo",
    # API docs
    "JSON API": "API JSON",
    "Authenticate with POST /api/v1/login, then send Authorization: Bearer <access_token>. The "
    "OpenAPI description:": (
        "Autenticati con POST /api/v1/login, poi invia Authorization: Bearer <access_token>. La "
        "descrizione OpenAPI:"
    ),
    "Method": "Metodo",
    "Path": "Percorso",
    "What it does": "Cosa fa",
}

# The agent console's words, one module per group of pages.
IT.update(
    {
        "Help desk console": "Console dell'assistenza",
        "Queues": "Code",
        "Phone call": "Telefonata",
        "Dashboard": "Cruscotto",
        "Development": "Sviluppo",
        "Administration": "Amministrazione",
        "These pages are for the help desk's staff.": "Queste pagine sono per il personale "
        "dell'assistenza.",
    }
)
IT.update(texts_queues.IT)
IT.update(texts_workspace.IT)
IT.update(texts_tools.IT)
IT.update(texts_knowledge.IT)
IT.update(texts_sales.IT)
IT.update(texts_quotes.IT)
