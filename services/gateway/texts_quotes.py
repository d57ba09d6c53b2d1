"""Italian for the quotes, portal and console (merged into ``texts.IT``)."""

from __future__ import annotations

IT: dict[str, str] = {
    # both
    "Quotes": "Preventivi",
    "Quotes for this ticket": "Preventivi di questo ticket",
    "Draft": "Bozza",
    "Sent": "Inviato",
    "Accepted": "Accettato",
    "Declined": "Rifiutato",
    "Expired": "Scaduto",
    "expired": "scaduto",
    "hours": "ore",
    "days": "giorni",
    "units": "unità",
    "Description": "Descrizione",
    "Quantity": "Quantità",
    "Unit price": "Prezzo unitario",
    "VAT": "IVA",
    "Amount": "Importo",
    "Net": "Imponibile",
    "Total": "Totale",
    "Valid until": "Valido fino al",
    "Proposed dates": "Date proposte",
    "Notes": "Note",
    "The quotes are not answering right now: try again in a moment.": (
        "I preventivi non rispondono in questo momento: riprova tra poco."
    ),
    # portal
    "Download PDF": "Scarica il PDF",
    "Accept": "Accetta",
    "Decline": "Rifiuta",
    "Thank you: you accepted the quote. We will confirm the dates with you.": (
        "Grazie: hai accettato il preventivo. Confermeremo le date con te."
    ),
    "You declined the quote: the ticket is solved with your reason.": (
        "Hai rifiutato il preventivo: il ticket è risolto con il tuo motivo."
    ),
    "Why do you decline it?": "Perché lo rifiuti?",
    "Please write why you decline the quote.": "Scrivi perché rifiuti il preventivo.",
    "This quote has expired: ask us for a new one if you still need it.": (
        "Questo preventivo è scaduto: chiedicene uno nuovo se ti serve ancora."
    ),
    "There are no quotes for this ticket.": "Non ci sono preventivi per questo ticket.",
    # console
    "Number": "Numero",
    "Actions": "Azioni",
    "Send quote": "Invia il preventivo",
    "No quotes yet.": "Ancora nessun preventivo.",
    "Make a quote": "Fai un preventivo",
    "Line": "Riga",
    "Unit": "Unità di misura",
    "Unit price (EUR)": "Prezzo unitario (EUR)",
    "VAT %": "IVA %",
    "Empty lines are left out.": "Le righe vuote sono tralasciate.",
    "Proposed activity dates": "Date proposte per l'attività",
}
