"""Hot model reload: watch the model provider in a background thread, swap between batches.

The composition root injects a provider: calling it loads ``(version, RiskModel)``;
``current_version()`` is a cheap look-up (e.g. the MLflow alias ``champion``). A new version is
loaded in the background; the scorer takes it with :meth:`ModelWatcher.take` between two
batches, so every payment of a batch is scored by one model and carries its version.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Protocol

from streaming.handler import ActiveModel

if TYPE_CHECKING:
    from models.risk import RiskModel

log = logging.getLogger(__name__)


class ModelProvider(Protocol):
    def __call__(self) -> tuple[str, RiskModel]: ...

    def current_version(self) -> str: ...


class ModelWatcher:
    def __init__(
        self, provider: ModelProvider, interval_s: float,
        review_threshold: float | None = None, hold_threshold: float | None = None,
    ) -> None:
        self.provider = provider
        self.interval_s = interval_s
        self._overrides = (review_threshold, hold_threshold)
        self._pending: ActiveModel | None = None
        self._current_version: str | None = None
        self._failed_version: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self) -> ActiveModel:
        version, model = self.provider()
        self._current_version = version
        # Batches of a few hundred rows gain nothing from OpenMP threads, and their idle
        # spinning takes the CPU the Kafka client threads and the broker need.
        model.num_threads = 1
        log.info("model loaded", extra={"model_version": version})
        return ActiveModel(version, model, *self._overrides)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="model-watcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def take(self) -> ActiveModel | None:
        """The newly loaded model, once (None if nothing new)."""
        with self._lock:
            pending, self._pending = self._pending, None
        return pending

    def check_now(self) -> None:
        """One check (the background thread calls this every ``interval_s``)."""
        try:
            version = self.provider.current_version()
        except Exception as exc:  # the registry may be down: keep scoring with the old model
            log.warning("model version check failed", extra={"error": repr(exc)})
            return
        if version in (self._current_version, self._failed_version):
            return
        log.info("new model version found, loading",
                 extra={"model_version": version, "previous": self._current_version})
        try:
            loaded = self.load()
        except Exception as exc:
            self._failed_version = version
            log.error("new model failed to load; keeping the current one",
                      extra={"model_version": version, "error": repr(exc)})
            return
        with self._lock:
            self._pending = loaded

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check_now()
