"""The web side of blingsync: the REST API (`/api/v1`), Bling's webhooks, the OAuth connect
flow and the health and metrics endpoints, as one ASGI app (`create_app`)."""
