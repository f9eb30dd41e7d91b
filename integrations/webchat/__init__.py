"""The chat on the municipal website: socket.io channel, widget assets and demo page.

Rasa loads :class:`integrations.webchat.channel.WebchatInput` from ``credentials.yml``.
:mod:`integrations.webchat.pages` serves HTML pages with security headers; other
pages of the assistant (Hulpplein, KCC console) reuse it.
"""
