"""Italian for the agent console's tools pages (merged into ``texts.IT``): the front desk's
phone form, the team lead's dashboard, the developers' pages and administration."""

from __future__ import annotations

IT: dict[str, str] = {
    # front desk
    "Find the caller": "Cerca chi chiama",
    "Phone, email or name": "Telefono, email o nome",
    "Search": "Cerca",
    "Nobody on file matches: fill in the caller below.": (
        "Nessuno in archivio corrisponde: compila i dati di chi chiama qui sotto."
    ),
    "Caller": "Chiamante",
    "Another caller": "Un altro chiamante",
    "A caller who is not on file: choose the organisation and write the name and email.": (
        "Chiamante non in archivio: scegli l'azienda e scrivi nome ed email."
    ),
    "Choose…": "Scegli…",
    "Caller's name": "Nome del chiamante",
    "Caller's email": "Email del chiamante",
    "Caller's phone": "Telefono del chiamante",
    "Callback number": "Numero da richiamare",
    "Request": "Richiesta",
    "Nature of the request": "Natura della richiesta",
    "Not known yet": "Non ancora nota",
    "Question": "Domanda",
    "Incident": "Malfunzionamento",
    "Bug": "Errore del software",
    "Change request": "Richiesta di modifica",
    "Quote": "Preventivo",
    "Hardware": "Hardware",
    "Asked to email the attachment": "Chiesto di inviare l'allegato per email",
    "Log the call": "Registra la telefonata",
    "Ticket {id} — read it to the caller": "Richiesta {id} — leggila a chi chiama",
    "Open the ticket": "Apri la richiesta",
    "Log another call": "Registra un'altra telefonata",
    # dashboard
    "The desk now": "L'assistenza adesso",
    "tickets not closed": "richieste non chiuse",
    "breached today": "fuori tempo oggi",
    "due in the next business hour": "in scadenza nella prossima ora lavorativa",
    "Only the first 10,000 tickets are counted.": "Sono contate solo le prime 10.000 richieste.",
    "Per status": "Per stato",
    "Per priority": "Per priorità",
    "Load per agent": "Carico per operatore",
    "No tickets in hand.": "Nessuna richiesta in carico.",
    "Due in the next business hour": "In scadenza nella prossima ora lavorativa",
    "Report": "Rapporto",
    "All organisations": "Tutte le aziende",
    "From": "Dal",
    "Show": "Mostra",
    "Download CSV": "Scarica CSV",
    "tickets received": "richieste ricevute",
    "hours spent": "ore impiegate",
    "satisfaction": "soddisfazione",
    "Tickets per severity": "Richieste per gravità",
    "Service-level compliance per milestone": "Rispetto dei livelli di servizio per traguardo",
    "Time to first feedback": "Tempo al primo riscontro",
    "Met": "Rispettato",
    "Breached": "Superato",
    "Still running": "In corso",
    "Milestone": "Traguardo",
    "Median (business hours)": "Mediana (ore lavorative)",
    "Median": "Mediana",
    "90th percentile": "90° percentile",
    "business hours": "ore lavorative",
    "Taken in charge": "Presa in carico",
    "First feedback": "Primo riscontro",
    "Resolution": "Risoluzione",
    "Not given": "Non indicata",
    "Hours by agent": "Ore per operatore",
    "Hours by organisation": "Ore per azienda",
    "No time logged.": "Nessun tempo registrato.",
    "On-call duty": "Reperibilità",
    "On-call duty is changed.": "La reperibilità è cambiata.",
    "On call": "Reperibile",
    "Development lead": "Responsabile dello sviluppo",
    "Role": "Ruolo",
    "Yes": "Sì",
    "No": "No",
    "Agent": "Operatore",
    "Team lead": "Capo squadra",
    "Front desk": "Centralino",
    "Developer": "Sviluppatore",
    "Administrator": "Amministratore",
    # development
    "Programming ticket": "Richiesta di programmazione",
    "Only those still to do": "Solo quelle da fare",
    "Also released and cancelled": "Anche rilasciate e annullate",
    "No programming tickets.": "Nessuna richiesta di programmazione.",
    "Support ticket": "Richiesta di assistenza",
    "Release": "Rilascio",
    "High": "Alta",
    "Average": "Media",
    "Low": "Bassa",
    "Secondary": "Secondaria",
    "Scheduled": "Pianificata",
    "In progress": "In lavorazione",
    "Fixed": "Corretta",
    "Released": "Rilasciata",
    "Cancelled": "Annullata",
    "Work must start by": "Il lavoro deve iniziare entro",
    "the development lead was told": "il responsabile dello sviluppo è stato avvisato",
    "Fixed in": "Corretta nella versione",
    "Fix notes": "Note sulla correzione",
    "Release notes": "Note di rilascio",
    "Remote update": "Aggiornamento remoto",
    "Technical description": "Descrizione tecnica",
    "Next step": "Prossimo passo",
    "Start work": "Inizia il lavoro",
    "Schedule": "Pianifica",
    "Planned date": "Data prevista",
    "Mark fixed": "Segna come corretta",
    "Ship the update": "Rilascia l'aggiornamento",
    "Remote-update window (optional)": "Finestra dell'aggiornamento remoto (facoltativa)",
    "Starts": "Inizio",
    "Ends": "Fine",
    "Cancel": "Annulla",
    "Cancel the programming ticket": "Annulla la richiesta di programmazione",
    "Back to the programming tickets": "Torna alle richieste di programmazione",
    "Work is started.": "Il lavoro è iniziato.",
    "It is scheduled.": "È pianificata.",
    "It is marked fixed.": "È segnata come corretta.",
    "The update is shipped: the support ticket comes back to the help desk to verify.": (
        "L'aggiornamento è rilasciato: la richiesta di assistenza torna all'assistenza per "
        "la verifica."
    ),
    "It is cancelled: the support ticket comes back to the help desk.": (
        "È annullata: la richiesta di assistenza torna all'assistenza."
    ),
    "The remote-update window is not a valid date and time.": (
        "La finestra dell'aggiornamento remoto non è una data e ora valida."
    ),
    # administration
    "Organisations": "Aziende",
    "Agents": "Operatori",
    "Business calendars": "Calendari lavorativi",
    "Business calendar": "Calendario lavorativo",
    "SLA plans": "Piani di servizio",
    "SLA plan": "Piano di servizio",
    "Sign in as the administrator": "Accedi come amministratore",
    "Customers, their contacts and their support contract.": (
        "I clienti, i loro contatti e il loro contratto di assistenza."
    ),
    "The help desk's people, their roles and on-call duty.": (
        "Le persone dell'assistenza, i loro ruoli e la reperibilità."
    ),
    "Opening hours, holidays and bridge days.": "Orari di apertura, festività e ponti.",
    "Targets per priority, in business minutes.": "Obiettivi per priorità, in minuti lavorativi.",
    "Creating organisations and agents and linking messaging accounts needs the "
    "administrator: sign in with the admin token.": (
        "Creare aziende e operatori e collegare account di messaggistica spetta "
        "all'amministratore: accedi con il token di amministrazione."
    ),
    "The administrator has no password: paste the admin token (HELPDESK_ADMIN_TOKEN, printed "
    "by make run). The session ends after eight hours.": (
        "L'amministratore non ha una password: incolla il token di amministrazione "
        "(HELPDESK_ADMIN_TOKEN, stampato da make run). La sessione termina dopo otto ore."
    ),
    "Admin token": "Token di amministrazione",
    "Help-desk staff: sign in with your email and password": (
        "Personale dell'assistenza: accedi con email e password"
    ),
    "This is not the administrator's token.": "Questo non è il token dell'amministratore.",
    "You are signed in as the administrator.": "Hai effettuato l'accesso come amministratore.",
    "Email domains": "Domini email",
    "Closed tickets": "Richieste chiuse",
    "Language": "Lingua",
    "Italian": "Italiano",
    "English": "Inglese",
    "A reply opens a new linked ticket": "Una risposta apre una nuova richiesta collegata",
    "A reply reactivates the ticket": "Una risposta riattiva la richiesta",
    "No organisations yet.": "Ancora nessuna azienda.",
    "New organisation": "Nuova azienda",
    "Company name": "Ragione sociale",
    "Separated by commas or spaces: mail from these domains is tied to the organisation.": (
        "Separati da virgole o spazi: la posta da questi domini è legata all'azienda."
    ),
    "Mail from an unknown address of these domains adds a contact": (
        "La posta da un indirizzo sconosciuto di questi domini aggiunge un contatto"
    ),
    "Colleagues of a department see each other's tickets": (
        "I colleghi di un reparto vedono le richieste l'uno dell'altro"
    ),
    "Create the organisation": "Crea l'azienda",
    "Only the administrator creates organisations.": "Solo l'amministratore crea le aziende.",
    "No RPC changes an organisation's name, domains, contact policy or language: they are "
    "shown as they are.": (
        "Nessuna funzione del servizio cambia nome, domini, regola dei contatti o lingua di "
        "un'azienda: sono mostrati come sono."
    ),
    "Contacts by domain": "Contatti per dominio",
    "Department sees tickets": "Il reparto vede le richieste",
    "Contract": "Contratto",
    "Default": "Predefinito",
    "Pending: remind after (business days)": "In attesa: sollecito dopo (giorni lavorativi)",
    "Pending: solve after the reminder (business days)": (
        "In attesa: risolta dopo il sollecito (giorni lavorativi)"
    ),
    "Note": "Nota",
    "No contract set: the defaults apply.": "Nessun contratto: valgono i predefiniti.",
    "Save the contract": "Salva il contratto",
    "Contacts": "Contatti",
    "No RPC changes a contact's name, email, role, language or department: only the phone "
    "number and the messaging accounts can be changed here.": (
        "Nessuna funzione del servizio cambia nome, email, ruolo, lingua o reparto di un "
        "contatto: qui si cambiano solo il telefono e gli account di messaggistica."
    ),
    "Messaging": "Messaggistica",
    "Messaging service": "Servizio di messaggistica",
    "Messaging ID": "ID di messaggistica",
    "Link": "Collega",
    "Save": "Salva",
    "No contacts yet.": "Ancora nessun contatto.",
    "New contact": "Nuovo contatto",
    "Contact's name": "Nome del contatto",
    "Contact's email": "Email del contatto",
    "Contact's phone": "Telefono del contatto",
    "Department": "Reparto",
    "The organisation's": "Quella dell'azienda",
    "User": "Utente",
    "Referent": "Referente",
    "Add the contact": "Aggiungi il contatto",
    "No RPC changes an agent's name, email or role: they are shown as they are.": (
        "Nessuna funzione del servizio cambia nome, email o ruolo di un operatore: sono "
        "mostrati come sono."
    ),
    "New agent": "Nuovo operatore",
    "Agent's name": "Nome dell'operatore",
    "Agent's email": "Email dell'operatore",
    "Create the agent": "Crea l'operatore",
    "Only the administrator creates agents.": "Solo l'amministratore crea gli operatori.",
    "A calendar cannot be changed once created: create a new one and name it in the contract.": (
        "Un calendario non si cambia dopo la creazione: creane uno nuovo e indicalo nel contratto."
    ),
    "Time zone": "Fuso orario",
    "Opening hours": "Orari di apertura",
    "Holidays": "Festività",
    "Closed days": "Giorni di chiusura",
    "New calendar": "Nuovo calendario",
    "Calendar name": "Nome del calendario",
    "National holidays of (country code)": "Festività nazionali di (codice del paese)",
    "Mon-Fri 08:30-13:00, 14:30-18:30": "Lun-Ven 08:30-13:00, 14:30-18:30",
    "Mon-Fri 07:30-12:00, 13:30-17:00": "Lun-Ven 07:30-12:00, 13:30-17:00",
    "As written below": "Come scritto qui sotto",
    "Opening intervals, one a line": "Intervalli di apertura, uno per riga",
    "Like: Mon-Fri 08:30-13:00": "Come: Mon-Fri 08:30-13:00 (o Lun-Ven 08:30-13:00)",
    "Closed days (bridge days)": "Giorni di chiusura (ponti)",
    "Dates like 2026-12-24, separated by commas or new lines.": (
        "Date come 2026-12-24, separate da virgole o a capo."
    ),
    "Create the calendar": "Crea il calendario",
    "A plan cannot be changed once created: create a new one and name it in the contract.": (
        "Un piano non si cambia dopo la creazione: creane uno nuovo e indicalo nel contratto."
    ),
    "New SLA plan": "Nuovo piano di servizio",
    "Plan name": "Nome del piano",
    "Targets in business minutes": "Obiettivi in minuti lavorativi",
    "Create the plan": "Crea il piano",
    "The organisation is created.": "L'azienda è creata.",
    "The contact is added: their password is on its way by email.": (
        "Il contatto è aggiunto: la sua password è in arrivo per email."
    ),
    "The phone number is saved.": "Il numero di telefono è salvato.",
    "The messaging account is linked.": "L'account di messaggistica è collegato.",
    "The contract is saved.": "Il contratto è salvato.",
    "The agent is created: their password is on its way by email.": (
        "L'operatore è creato: la sua password è in arrivo per email."
    ),
    "The calendar is created.": "Il calendario è creato.",
    "The SLA plan is created.": "Il piano di servizio è creato.",
}
