"""The insights page for the municipality (/inzichten). See channel.py."""
