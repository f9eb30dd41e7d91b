"""Channels and external systems: web widget, KCC, ZGW, Signalen."""
