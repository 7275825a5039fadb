"""Pure rating core: decks, jurisdiction, voice, messaging, API queries, margin."""
