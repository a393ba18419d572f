"""Small text helpers shared by the engines."""

import re

# Han, kana, Hangul, CJK punctuation and full-width forms.
_CJK = r"\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")


def join_cjk(text: str) -> str:
    """Drop the spaces engines put between CJK characters (Chinese has no word spaces)."""
    return _SPACE_BETWEEN_CJK.sub("", text)


def split_langs(lang: str) -> list[str]:
    return [part for part in lang.replace(",", "+").split("+") if part]
