"""A local Bling (API v2 and v3) for tests and the demo. Production code never imports it."""
