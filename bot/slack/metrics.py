"""Prometheus metrics of one Slack app instance (own registry: tests can build many apps)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 3.0, 5.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.commands = Counter("mailcheck_slack_commands", "Slash commands received, by subcommand",
                                ["subcommand"], registry=r)
        self.analyses = Counter("mailcheck_analyses", "Checks and analyses run, by kind and origin",
                                ["kind", "origin"], registry=r)
        self.errors = Counter("mailcheck_errors", "Errors while handling Slack requests, by place",
                              ["where"], registry=r)
        self.events = Counter("mailcheck_slack_events", "Events API deliveries, by type and outcome",
                              ["type", "outcome"], registry=r)
        self.ack_latency = Histogram("mailcheck_slack_ack_seconds",
                                     "Time from receiving a Slack request to answering it (the ack)",
                                     ["mode"], buckets=ACK_BUCKETS, registry=r)
        self.in_flight = Gauge("mailcheck_checks_in_flight", "Checks currently running", registry=r)
        self.check_seconds = Histogram("mailcheck_check_seconds", "Wall time of checks and analyses",
                                       ["kind"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
