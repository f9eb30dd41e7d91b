"""Case backend for ZGW-compliant zaaksystemen (Zaken API 1.5, Catalogi API 1.3), e.g. Open Zaak.

``plugin.Plugin`` is the backend the delivery worker (``bot.outbox``) uses;
``client.ZGWClient`` talks HTTP; ``config.load_config`` reads the settings.
"""
