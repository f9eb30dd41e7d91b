"""The municipal chat assistant: custom actions, form engine and case store."""
