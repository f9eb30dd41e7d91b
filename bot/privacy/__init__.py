"""Personal data protection for the production profile.

* :mod:`bot.privacy.masking`: find and mask BSN, e-mail, phone, IBAN, postcode
  with house number and tokens (``mask_text``, ``find_pii``).
* :mod:`bot.privacy.protect`: what the tracker store writes (``Protector``).
* :mod:`bot.privacy.store`: ``MaskingSQLTrackerStore``, Rasa's SQL tracker
  store with masked text and encrypted answers (endpoints.production.yml).
* :mod:`bot.privacy.logs`: masks every log record (``install``,
  ``MaskingFilter`` for ``--logging-config-file deploy/logging.yml``).
* ``python -m bot.privacy purge|erase|audit|genkey``: retention and erasure.

See docs/deployment.md.
"""
