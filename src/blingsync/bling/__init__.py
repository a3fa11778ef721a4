"""The Bling client: API v3 (OAuth2) and v2 (API key) behind one interface, within Bling's limits."""
