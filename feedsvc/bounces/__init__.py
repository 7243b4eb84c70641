"""Bounces, complaints and unsubscribe mail: what comes back after the relay said 250."""
