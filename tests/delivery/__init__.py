"""Tests of feedsvc.delivery: pacing, the outbox, SMTP (wire, faults, TLS)."""
