"""Italian for the sales office's pages, portal and console (merged into ``texts.IT``)."""

from __future__ import annotations

IT: dict[str, str] = {
    # portal: the sales office
    "Sales office": "Ufficio commerciale",
    "Quotes, on-site training or optimisation days, changes to the software: the sales office "
    "answers. Before any direct work on your systems we send a quote.": (
        "Preventivi, giornate di formazione o di ottimizzazione in sede, modifiche al "
        "software: risponde l'ufficio commerciale. Prima di ogni intervento diretto sui "
        "vostri sistemi inviamo un preventivo."
    ),
    "Request a quote": "Richiedi un preventivo",
    "Request training": "Richiedi una formazione",
    "Request a customisation": "Richiedi una personalizzazione",
    "Price list": "Listino prezzi",
    "My requests to the sales office": "Le mie richieste all'ufficio commerciale",
    "Request": "Richiesta",
    "Kind": "Tipo",
    "Received": "Ricevuta",
    "Not assigned yet": "Non ancora assegnata",
    "Older requests": "Richieste precedenti",
    "You have not sent any request to the sales office yet.": (
        "Non hai ancora inviato richieste all'ufficio commerciale."
    ),
    "Preferred dates": "Date preferite",
    "The days or dates that suit you, for example: 15-16 January, at your office.": (
        "I giorni o le date che preferisci, per esempio: 15-16 gennaio, presso la vostra sede."
    ),
    "Send to the sales office": "Invia all'ufficio commerciale",
    "Thank you: your request has reached the sales office, who will contact you.": (
        "Grazie: la richiesta è arrivata all'ufficio commerciale, che ti contatterà."
    ),
    "The sales office answers by email; reply to that email to write again.": (
        "L'ufficio commerciale risponde per email; rispondi a quella email per scrivere ancora."
    ),
    "sales office": "ufficio commerciale",
    "Date": "Data",
    "Size": "Dimensione",
    "Download the price list": "Scarica il listino prezzi",
    "There is no price list yet: ask the sales office for one.": (
        "Non c'è ancora un listino prezzi: chiedilo all'ufficio commerciale."
    ),
    # kinds and statuses
    "Information": "Informazioni",
    "Development quote": "Preventivo di sviluppo",
    "Training or optimisation days": "Giornate di formazione o di ottimizzazione",
    "Customisation": "Personalizzazione",
    "Contacted": "Contattato",
    "Quoted": "Preventivo inviato",
    "Won": "Acquisito",
    "Lost": "Perso",
    # console: the sales office
    "Sales": "Commerciale",
    "Sales requests": "Richieste commerciali",
    "Number": "Numero",
    "Owner": "Responsabile",
    "Mine": "Mie",
    "Unassigned": "Non assegnate",
    "No sales request matches.": "Nessuna richiesta commerciale corrisponde.",
    "Nobody yet": "Ancora nessuno",
    "Nobody": "Nessuno",
    "Work on it": "Lavorala",
    "Take it": "Prendila in carico",
    "Assign": "Assegna",
    "Note": "Nota",
    "Update status": "Aggiorna lo stato",
    "Answer by email": "Rispondi per email",
    "Send reply": "Invia la risposta",
    "The request is yours.": "La richiesta è tua.",
    "The request is assigned.": "La richiesta è assegnata.",
    "The status is changed.": "Lo stato è cambiato.",
    "The answer is sent to the requester by email.": (
        "La risposta è inviata per email a chi ha fatto la richiesta."
    ),
    # console: administration, the price list
    "PDF file": "File PDF",
    "Upload price list": "Carica il listino prezzi",
    "Only an administrator uploads a new price list.": (
        "Solo un amministratore carica un nuovo listino prezzi."
    ),
    "Versions": "Versioni",
    "File": "File",
    "Uploaded": "Caricato",
    "By": "Da",
    "current": "attuale",
    "No price list has been uploaded yet.": "Non è ancora stato caricato un listino prezzi.",
    "The new price list is the one customers download now.": (
        "Il nuovo listino è quello che i clienti scaricano da ora."
    ),
    "Choose the price list's PDF file.": "Scegli il file PDF del listino.",
    "A price list may be at most 20 MiB.": "Un listino può essere al massimo di 20 MiB.",
}
