"""Prometheus metrics of one app instance (its own registry: no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "canhgiac_api_requests", "HTTP requests", ["method", "route", "status"],
            registry=self.registry)
        self.latency = Histogram(
            "canhgiac_api_request_seconds", "HTTP request latency", ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry)
        self.actions = Counter(
            "canhgiac_api_actions_published", "account.actions events", ["action", "ok"],
            registry=self.registry)
        self.cache = Counter(
            "canhgiac_api_cache", "high-risk response cache lookups", ["result"],
            registry=self.registry)
        self.audit_commit = Histogram(
            "canhgiac_api_audit_commit_seconds",
            "one group commit of audit entries (serving.auditlog.AuditWriter)",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
            registry=self.registry)
        self.store_version = Gauge(
            "canhgiac_api_store_version", "last seen case-store version", registry=self.registry)
