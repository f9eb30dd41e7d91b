"""The REST channel (``POST /webhooks/rest/webhook``) with a checked request body.

Rasa loads :class:`integrations.rest.channel.RestInput` from ``credentials.yml``.
"""
