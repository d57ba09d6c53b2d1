"""Italian for the knowledge base and search pages, portal and console (merged into
``texts.IT``)."""

from __future__ import annotations

IT: dict[str, str] = {
    # portal: documentation
    "Documentation": "Documentazione",
    "Search": "Cerca",
    "Results for": "Risultati per",
    "No article matches these words.": "Nessun articolo contiene queste parole.",
    "Every article": "Tutti gli articoli",
    "Updated": "Aggiornato",
    "There are no articles yet.": "Non ci sono ancora articoli.",
    "General": "Generale",
    "These may already answer you": "Questi articoli potrebbero già risponderti",
    "Did this article solve your problem? Then you need not send the ticket.": (
        "Questo articolo ha risolto il problema? Allora non serve inviare il ticket."
    ),
    "This answered my question": "Questo ha risposto alla mia domanda",
    "No, I still need help: write a ticket": "No, ho ancora bisogno di aiuto: scrivi un ticket",
    "Thank you: we are glad the article answered your question.": (
        "Grazie: siamo contenti che l'articolo abbia risposto alla tua domanda."
    ),
    # console: search
    "Tickets and articles": "Ticket e articoli",
    "Write words of a ticket or an article in the search box above: subject, description, "
    "answers and internal notes are searched.": (
        "Scrivi nella casella di ricerca qui sopra parole di un ticket o di un articolo: si "
        "cercano oggetto, descrizione, risposte e note interne."
    ),
    "internal note": "nota interna",
    "No ticket matches these words.": "Nessun ticket contiene queste parole.",
    "The search is not answering right now: try again in a moment.": (
        "La ricerca non risponde in questo momento: riprova tra poco."
    ),
    "Your role may not search these.": "Il tuo ruolo non può cercare qui.",
    "Similar tickets": "Ticket simili",
    "Similar tickets and articles": "Ticket simili e articoli",
    "None found.": "Nessuno trovato.",
    "Make an article": "Crea un articolo",
    # console: articles
    "Articles": "Articoli",
    "New article": "Nuovo articolo",
    "Draft": "Bozza",
    "Published": "Pubblicato",
    "Every customer": "Tutti i clienti",
    "Customers of some organisations": "I clienti di alcune aziende",
    "The desk only": "Solo l'assistenza",
    "Title": "Titolo",
    "Language": "Lingua",
    "Visible to": "Visibile a",
    "Version": "Versione",
    "Answered customers": "Clienti a cui ha risposto",
    "No articles yet.": "Ancora nessun articolo.",
    "See it as customers do": "Vedilo come i clienti",
    "Made from the answer of ticket": "Creato dalla risposta del ticket",
    "Before publishing, remove the customer's details: names, email addresses, phone "
    "numbers, serial numbers, anything that says who they are.": (
        "Prima di pubblicare, togli i dati del cliente: nomi, indirizzi email, numeri di "
        "telefono, numeri di serie, tutto ciò che dice chi è."
    ),
    "Text (Markdown)": "Testo (Markdown)",
    "Markdown: # a heading, **bold**, - a list, 1. steps, [words](https://address) a link. "
    "No HTML.": (
        "Markdown: # un titolo, **grassetto**, - un elenco, 1. passi, [parole](https://indirizzo) "
        "un collegamento. Niente HTML."
    ),
    "Empty for a general article.": "Vuoto per un articolo generale.",
    "Tags": "Etichette",
    "Separated by commas.": "Separate da virgole.",
    "Organisations": "Aziende",
    "Only when visible to the customers of some organisations: choose them here.": (
        "Solo se visibile ai clienti di alcune aziende: sceglile qui."
    ),
    "What changed": "Cosa è cambiato",
    "Save": "Salva",
    "The current text": "Il testo attuale",
    "Publication": "Pubblicazione",
    "Customers who may see it can read it now.": "I clienti che possono vederlo lo leggono già.",
    "A draft: only the desk sees it.": "Una bozza: la vede solo l'assistenza.",
    "Unpublish": "Ritira",
    "Publish": "Pubblica",
    "As it is shown": "Come viene mostrato",
    "Versions": "Versioni",
    "The article is saved as a draft.": "L'articolo è salvato come bozza.",
    "The article is saved.": "L'articolo è salvato.",
    "The article is published: customers can read it.": (
        "L'articolo è pubblicato: i clienti possono leggerlo."
    ),
    "The article is back to draft: customers no longer see it.": (
        "L'articolo è tornato bozza: i clienti non lo vedono più."
    ),
    "Someone else changed this article while you were editing it (you started from "
    "version {old}, it is now at version {new}). Your text is kept below and the current "
    "text is under it: compare them, then save again to replace it with yours.": (
        "Qualcun altro ha cambiato questo articolo mentre lo modificavi (eri partito dalla "
        "versione {old}, ora è alla versione {new}). Il tuo testo è qui sotto e quello attuale "
        "più in basso: confrontali, poi salva di nuovo per sostituirlo con il tuo."
    ),
    # form fields the gateway cannot read
    "is required": "è obbligatorio",
    "must be a whole number": "deve essere un numero intero",
    "choose one of the options": "scegli una delle opzioni",
    "at most 20 tags": "al massimo 20 etichette",
}
