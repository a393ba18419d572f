"""The pluggable OCR engine layer. Start with base.py (the protocol) and registry.py."""
