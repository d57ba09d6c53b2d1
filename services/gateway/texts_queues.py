"""Italian for the agent console's queues pages (merged into ``texts.IT``)."""

from __future__ import annotations

IT: dict[str, str] = {
    # views
    "Views": "Viste",
    "Unassigned": "Non assegnate",
    "Due soon": "In scadenza",
    "Breached": "Scadute",
    "All open": "Tutte aperte",
    # filters
    "Organisation": "Azienda",
    "Assignee": "Assegnatario",
    "Any": "Qualsiasi",
    "Kind": "Tipo",
    "Level": "Livello",
    "Sort by": "Ordina per",
    "Next due": "Prossima scadenza",
    "Newest": "Più recenti",
    "Clear filters": "Togli i filtri",
    "Question": "Domanda",
    "Incident": "Malfunzionamento",
    "Bug": "Errore del software",
    "Change request": "Richiesta di modifica",
    "Quote": "Preventivo",
    "Hardware": "Hardware",
    "First level": "Primo livello",
    "Second level": "Secondo livello",
    "This filter has a value the queue does not know: {field}.": (
        "Questo filtro ha un valore che la coda non conosce: {field}."
    ),
    "The support queues are not open to your role.": (
        "Le code dell'assistenza non sono aperte al tuo ruolo."
    ),
    "Keys: j / k move in the list, Enter opens, / searches.": (
        "Tasti: j / k per muoversi nell'elenco, Invio per aprire, / per cercare."
    ),
    # the table
    "Time left": "Tempo rimasto",
    "Next page": "Pagina successiva",
    "breached": "scaduto",
    "over 80% of the time used": "oltre l'80% del tempo usato",
    "< 1 min": "< 1 min",
    "d": "g",
    "{t} left": "{t} rimasti",
    "{t} left, paused": "{t} rimasti, in pausa",
    "late by {t}": "in ritardo di {t}",
    "taken in charge": "presa in carico",
    "first feedback": "primo riscontro",
    "resolution": "risoluzione",
    # presence
    "{name} is replying": "{name} sta rispondendo",
    "{name} is viewing": "{name} la sta guardando",
    "state: must be viewing, replying or left": ("state: deve essere viewing, replying o left"),
}
