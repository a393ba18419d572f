"""Assertions on the API's error answers, for a requests response (the real stack) or a
Django test client response alike."""


def assert_error(response, status: int, code: str) -> dict:
    """The one JSON error shape with this status and code, a message, and no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert "Traceback" not in response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    return error
