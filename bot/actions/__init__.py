"""Custom actions, loaded by the action server with `python -m rasa_sdk --actions bot.actions`."""
