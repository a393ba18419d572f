"""Adapters that answer older OCR services' requests exactly as those services did.

Each module is one dialect: it translates the old request into a call to app.services
and the result back into the old response shape. Nothing else lives here.
"""
