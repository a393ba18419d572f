"""DRF's JSON parser, with a body nested too deeply to parse refused as a 400 like any other
malformed JSON (the standard library raises RecursionError there, which DRF lets through as a 500)."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
