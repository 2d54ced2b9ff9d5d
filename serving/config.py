"""What the API needs from the settings. ``canhgiac.settings.Settings`` satisfies it; serving
does not import the composition root (imports go one way)."""

from __future__ import annotations

from typing import Protocol


class ApiSettings(Protocol):
    @property
    def api_max_page(self) -> int: ...

    @property
    def store_url(self) -> str: ...
