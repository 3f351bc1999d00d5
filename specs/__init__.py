"""The protocol specs shipped with daqwire, as package data (YAML plus the JSON Schema)."""
