"""Tests of feedsvc.newsletter: subscribers, digests, messages, tokens."""
